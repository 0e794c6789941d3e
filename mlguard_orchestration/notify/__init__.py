"""Rendering reports for people (terminal, logs, chat, email). Senders arrive with the notifier issue."""

from mlguard_orchestration.notify.render import to_markdown, to_text

__all__ = ["to_markdown", "to_text"]
