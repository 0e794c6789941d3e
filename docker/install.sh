#!/usr/bin/env bash
# Install mlguard-orchestration into an existing Airflow environment — the official image's, or any venv that
# already has Airflow — without moving a single package Airflow brought: everything installed is frozen into a
# constraints file first, so pip can only add what is missing (duckdb, pyarrow, …).
#
#   docker/install.sh SOURCE_DIR[EXTRAS]    # uses `python` on PATH, or $PYTHON
#
# The Dockerfile runs this; so does CI (`make docker-install-check`), against a venv built from
# requirements/lock.txt, because Docker images cannot be pulled on our machines.
set -euo pipefail
src="${1:?usage: docker/install.sh SOURCE_DIR}"
py="${PYTHON:-python}"
pins="$(mktemp)"
trap 'rm -f "$pins"' EXIT
"$py" -m pip freeze --exclude-editable | grep -v -i '^mlguard[-_]orchestration' > "$pins"
"$py" -m pip install --no-cache-dir --disable-pip-version-check --quiet --constraint "$pins" "$src"
"$py" - <<'PY'
import importlib.metadata as md

import mlguard_orchestration

eps = [e for e in md.entry_points(group="apache_airflow_provider") if e.value.startswith("mlguard_orchestration")]
info = eps[0].load()() if eps else None
assert info and info["package-name"] == "mlguard-orchestration", "the Airflow provider entry point is missing"
import mlguard_orchestration.airflow  # noqa: E402,F401  (the adapter imports against this Airflow)

print(f"mlguard-orchestration {mlguard_orchestration.__version__} installed as Airflow provider {info['name']!r}")
PY
