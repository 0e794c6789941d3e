"""The README is the contract: every code block in it runs here.

Python blocks run in order in one namespace, as a reader pastes them into a notebook, inside a workspace that
holds the files the README names (`data/features.parquet`, `data/labels.parquet`, …); a block that refers to
the reader's own objects (`labels_df`, a model, predictions) gets them from `SETUPS`, matched by a line of
the block. YAML blocks load as guard specs; bash blocks run in bash in the workspace with the project's venv
on PATH; text blocks are what `make demo` prints and are compared with it. A block that no rule covers fails
the test, so a new README block cannot go unexecuted. Example hosts (hooks.slack.com, alerts.example.com,
smtp.example.com) are pointed at real servers on loopback: nothing leaves the machine.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import mlguard_orchestration as mg
from tests import _servers
from tests._data import churn_frame

http_server = _servers.http_server


@pytest.fixture
def smtp_server() -> Iterator[_servers.SmtpServer]:
    """An SMTP server on loopback that knows the README's example login."""
    server = _servers.SmtpServer(username="mlguard", password="app-password")
    yield server
    server.close()

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.DOTALL | re.MULTILINE)


def blocks() -> list[tuple[int, str, str]]:
    """(line, language, code) of every fenced block."""
    text = README.read_text()
    return [(text[: m.start()].count("\n") + 1, m.group(1), m.group(2)) for m in BLOCK.finditer(text)]


# -- the workspace ----------------------------------------------------------------------------------------------


def features(n: int, seed: int) -> pd.DataFrame:
    frame = churn_frame(n, seed=seed)
    return frame.assign(snapshot_date=pd.Timestamp("2024-05-31"))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("readme")
    (d / "data" / "features").mkdir(parents=True)
    (d / "guards").mkdir()
    feats = features(20_000, 1)
    feats.to_parquet(d / "data" / "features.parquet")
    feats.to_parquet(d / "data" / "features" / "part-0.parquet")
    features(20_000, 2).to_parquet(d / "data" / "yesterday.parquet")
    features(20_000, 3).to_parquet(d / "data" / "today.parquet")
    feats[["user_id", "snapshot_date", "churned"]].to_parquet(d / "data" / "labels.parquet")
    (d / "guards" / "features.yaml").write_text("name: features\ndefault_suite: true\n")
    (d / "guards" / "join.yaml").write_text(
        "name: join\nchecks:\n  - {kind: join_keys, left: labels, right: features, on: [user_id]}\n")
    return d


# -- what a block needs from the reader ---------------------------------------------------------------------------


def _join(ns: dict[str, Any], ws: Path) -> None:
    ns["labels_df"] = pd.read_parquet(ws / "data" / "labels.parquet")


def _accept(ns: dict[str, Any], ws: Path) -> None:
    """A failed run of guard 'features' for the person to accept."""
    guard = mg.Guard("features", default_suite=True, store=ws / ".mlguard" / "profiles")
    guard.run(features(5_000, 4))
    guard.run(features(5_000, 5).assign(monthly_spend_usd=lambda f: f["monthly_spend_usd"] * 100))


def _notify(ns: dict[str, Any], ws: Path) -> None:
    ns["report"] = mg.Guard("features", [mg.NullRate(column="monthly_spend_usd")]).run(
        features(1_000, 6).assign(monthly_spend_usd=np.nan))
    ns["exc"] = mg.GuardFailed(ns["report"])


def _gate(ns: dict[str, Any], ws: Path) -> None:
    rng = np.random.default_rng(7)
    n = 4_000
    frame = features(n, 8).assign(user_id=np.arange(n))
    ns["y"] = frame["churned"].to_numpy()
    ns["scores"] = np.clip(0.2 + 0.5 * ns["y"] + rng.normal(0, 0.25, n), 0, 1)
    ns["eval_df"] = frame.assign(score=ns["scores"])
    ns["train_df"] = features(n, 9).assign(user_id=np.arange(n, 2 * n))


def _changes(ns: dict[str, Any], ws: Path) -> None:
    ns["__file__"] = str(ROOT / "dags_examples" / "churn_dag.py")
    ns["df"] = features(2_000, 10)


def _training(ns: dict[str, Any], ws: Path) -> None:
    """A small regression model, its optimizer, loss and a loader of 60 batches."""
    import torch

    from tests.training._models import loader, mlp, regression_data

    ns["torch"] = torch
    ns["model"] = mlp(8, 1)
    ns["optimizer"] = torch.optim.SGD(ns["model"].parameters(), lr=0.01, momentum=0.9)
    ns["loss_fn"] = torch.nn.functional.mse_loss
    ns["loader"] = list(loader(regression_data(), 60))
    ns["amp_loss"] = lambda m, b: ns["loss_fn"](m(b[0]), b[1])


def _callbacks(ns: dict[str, Any], ws: Path) -> None:
    """A LightningModule with its own data, and a Hugging Face model with TrainingArguments and a dataset."""
    import lightning
    import torch
    import transformers

    from tests.training._models import regression_data
    from tests.training.test_huggingface import Regressor as HfRegressor
    from tests.training.test_huggingface import regression_rows
    from tests.training.test_lightning import Regressor

    x, y = regression_data(256)

    class Module(Regressor):
        def train_dataloader(self) -> Any:
            return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32)

    ns.update(lightning=lightning, transformers=transformers, module=Module(), model=HfRegressor(),
              ds=regression_rows(), args=transformers.TrainingArguments(
                  output_dir=str(ws / "hf"), max_steps=20, per_device_train_batch_size=16, report_to=[],
                  save_strategy="no", use_cpu=True, disable_tqdm=True, logging_strategy="no"))


SETUPS: dict[str, Callable[[dict[str, Any], Path], None]] = {
    '"labels": labels_df': _join,
    "entry = guard.accept(": _accept,
    "deliveries = notify(": _notify,
    "report = mg.evaluate_gate(": _gate,
    "for change in report.changes:": _changes,
    "with TrainingGuard(model, optimizer": _training,
    "lightning.Trainer(": _callbacks,
}


@contextlib.contextmanager
def _prefect_api() -> Iterator[None]:
    """Blocks are saved to a Prefect API: a real, temporary Prefect server (the test harness)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


AROUND: dict[str, Callable[[], contextlib.AbstractContextManager[None]]] = {'.save("ml-alerts")': _prefect_api}
# Blocks that are not run as they stand, and what runs instead (each says why).
ELSEWHERE: dict[str, str] = {
    "make demo    #": "test_the_first_block_sets_up_and_runs_the_demo",
    "configure:success →": "test_the_first_block_sets_up_and_runs_the_demo",
    # long-running servers on fixed ports: a real api-server serves the report view to Chromium in
    # tests/airflow/test_report_view.py; the flow module's exit codes run in tests/prefect/test_example_flow.py
    "airflow api-server --port 8080": "tests/airflow/test_report_view.py",
    "prefect server start --port 4200": "tests/prefect/test_example_flow.py",
}


@pytest.fixture(scope="module")
def warehouse() -> Iterator[str]:
    """The README's warehouse: a real PostgreSQL on loopback holding `public.sales`."""
    from tests._postgres import load_frame, postgres_server

    for server in postgres_server():
        rng = np.random.default_rng(11)
        sales = pd.DataFrame({"day": np.repeat(["2026-11-01", "2026-11-02"], 500), "amount": rng.gamma(2, 30, 1_000)})
        with server.connect() as con:
            load_frame(con, ("public", "sales"), sales)
        yield server.url


@pytest.fixture
def loopback(http_server: _servers.RecordingHTTPServer, smtp_server: _servers.SmtpServer,
             warehouse: str) -> dict[str, str]:
    """The README's example hosts, mapped to real servers on 127.0.0.1."""
    base = f"http://127.0.0.1:{http_server.port}"
    return {"https://hooks.slack.com": base, "https://alerts.example.com": base,
            '"smtp.example.com", 587': f'"127.0.0.1", {smtp_server.port}', "starttls=True": "starttls=False",
            "postgresql+psycopg://guard@warehouse.example.com/analytics": warehouse}


def _loopback(code: str, servers: dict[str, str]) -> str:
    for host, url in servers.items():
        code = code.replace(host, url)
    return code


@pytest.mark.timeout(900)  # every block of the README in order, with a Prefect server: minutes on a busy machine
def test_every_python_yaml_and_bash_block_runs(workspace: Path, monkeypatch: pytest.MonkeyPatch,
                                               loopback: dict[str, str], http_server: _servers.RecordingHTTPServer,
                                               smtp_server: _servers.SmtpServer) -> None:
    monkeypatch.chdir(workspace)
    ns: dict[str, Any] = {"__name__": "readme"}
    ran = 0
    for line, lang, code in blocks():
        where = f"README.md:{line} ({lang or 'no language'})"
        if any(marker in code for marker in ELSEWHERE):
            continue
        assert lang in ("python", "yaml", "bash", "text"), f"{where}: give the block a language"
        if lang == "text":
            raise AssertionError(f"{where}: a text block must be output that a test compares (see ELSEWHERE)")
        if lang == "yaml":
            spec = mg.load_spec(_write(workspace / "block.yaml", code))
            assert spec.name, where
            if spec.name == "churn_features":
                _write(workspace / "guards.yaml", code)  # the CLI block below uses it
        elif lang == "bash":
            proc = subprocess.run(["bash", "-c", "set -u\n" + _loopback(code, loopback)], check=False, cwd=workspace,
                                  capture_output=True, text=True, timeout=600,
                                  env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"})
            out = proc.stdout + proc.stderr
            assert proc.returncode == 0 and "Traceback" not in out, f"{where}:\n{out[-3000:]}"
        else:
            for marker, setup in SETUPS.items():
                if marker in code:
                    setup(ns, workspace)
            around = next((make for marker, make in AROUND.items() if marker in code), contextlib.nullcontext)
            try:
                with around():
                    exec(compile(_loopback(code, loopback), where, "exec"), ns)  # noqa: S102 - the README's code
            except Exception as exc:
                raise AssertionError(f"{where} raised {type(exc).__name__}: {exc}") from exc
            if "connection=warehouse" in code:  # guarded in PostgreSQL, as the block says
                assert ns["report"].status == "pass" and "(postgres)" in ns["report"].tables["data"].source
        ran += 1
    assert ran >= 20
    # what the blocks promised happened: the guard ran, the notifiers delivered to the (loopback) services
    assert ns["report"].guard and isinstance(ns["report"], mg.Report)
    assert {d.notifier: d.ok for d in ns["deliveries"]} == {"slack": True, "webhook": True, "email": True}
    assert len(http_server.requests) >= 2
    assert smtp_server.messages, "the README's email notifier delivered"


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.timeout(1200)  # `make demo` as a new user runs it: its own subprocess timeout (900 s) decides first
def test_the_first_block_sets_up_and_runs_the_demo() -> None:
    """`make demo` (the venv is already set up, so it only runs the main job) prints what the README shows;
    `make test` is the command running this very test, so its recipe is checked, not run again."""
    first = next(code for _, lang, code in blocks() if lang == "bash" and "make demo" in code)
    assert "make demo" in first and "make test" in first
    shown = next(code for _, lang, code in blocks() if lang == "text" and "configure:success" in code)
    proc = subprocess.run(["make", "--no-print-directory", "demo"], cwd=ROOT, capture_output=True, text=True,
                          check=False, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    for line in shown.strip().splitlines():
        for piece in (p.strip(" →") for p in line.split("…")):
            assert piece in proc.stdout, f"README shows {piece!r}; make demo printed:\n{proc.stdout[-4000:]}"
    recipe = subprocess.run(["make", "-n", "test"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "-m pytest" in recipe and "-m ruff check" in recipe
