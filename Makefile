# mlguard-orchestration developer Makefile.
#   make .venv  - create/refresh the pinned virtualenv (stamp-based)
#   make test   - ruff, mypy (config in pyproject.toml) and the test suite on 2 workers (sets everything up from a
#                 fresh clone)
#   make demo   - run the example pipeline (ORCHESTRATOR=airflow|prefect; default airflow)
#   make test-prefect-latest - the core and Prefect tests on the newest Prefect, without Airflow
#   make bench  - run the data-guard benchmarks
#   make lock   - regenerate requirements/lock.txt
#   make clean  - remove virtualenvs, caches and build output

SHELL := /bin/bash
.DEFAULT_GOAL := test

UV_VERSION := 0.13.9
VENV       := .venv
VPY        := $(VENV)/bin/python
UV         := $(VENV)/bin/uv
STAMP      := $(VENV)/.mlguard-installed
TOOLS      := .tools
TOOLS_UV   := $(TOOLS)/bin/uv
TOOLS_STAMP := $(TOOLS)/.uv-$(UV_VERSION)
LOCK       := requirements/lock.txt
# The newest Prefect cannot share .venv with Airflow 3.3 (fastapi), so it gets its own venv and lock.
LATEST        := .venv-prefect-latest
LATEST_LOCK   := requirements/prefect-latest.txt
LATEST_STAMP  := $(LATEST)/.mlguard-installed
# Which orchestrator `make demo` runs: ORCHESTRATOR=prefect make demo (or MLGUARD_ORCHESTRATOR=prefect).
ORCHESTRATOR ?= $(or $(MLGUARD_ORCHESTRATOR),airflow)

# Interpreter used to create virtualenvs: python3.11, falling back to python3
# (its version is checked to be 3.11 before use). Override: make BOOT_PYTHON=...
BOOT_PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3 2>/dev/null)

# uv ignores pip's configuration, so pass pip's find-links (which holds the
# CPU-only torch wheel) explicitly. Tolerates it being unset.
FIND_LINKS := $(strip $(shell $(BOOT_PYTHON) -m pip config get global.find-links 2>/dev/null))
ifeq ($(FIND_LINKS),)
FIND_LINKS := $(strip $(PIP_FIND_LINKS))
endif
UV_FIND_LINKS := $(foreach d,$(FIND_LINKS),--find-links $(d))

export AIRFLOW_HOME := $(CURDIR)/.airflow

CHECK_PY311 = -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'

.PHONY: .venv demo demo-cli test bench lock lock-prefect-latest test-prefect-latest clean check-python \
	docker-install-check

check-python:
	@test -n "$(BOOT_PYTHON)" || { echo "error: neither python3.11 nor python3 found on PATH" >&2; exit 1; }
	@$(BOOT_PYTHON) $(CHECK_PY311) || { echo "error: $(BOOT_PYTHON) is not Python 3.11 ($$($(BOOT_PYTHON) -V 2>&1))" >&2; exit 1; }
	@test -n "$(FIND_LINKS)" || echo "warning: pip has no global.find-links; the torch==2.13.0+cpu wheel may not be found" >&2

.venv: $(STAMP)

$(STAMP): $(LOCK) pyproject.toml
	@$(MAKE) --no-print-directory check-python
	@if [ ! -x $(VPY) ] || ! $(VPY) $(CHECK_PY311) 2>/dev/null; then \
		echo "creating $(VENV) with $(BOOT_PYTHON) (pinned packages from $(LOCK))"; \
		rm -rf $(VENV) && $(BOOT_PYTHON) -m venv $(VENV); \
	fi
	@$(VPY) -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	@$(UV) pip sync --quiet --python $(VPY) $(UV_FIND_LINKS) $(LOCK) requirements/venv-tools.txt
	@$(UV) pip install --quiet --python $(VPY) --no-deps -e .
	@touch $@

demo: .venv
	@$(VPY) -m dags_examples.demo --orchestrator $(ORCHESTRATOR)

demo-cli: .venv
	$(VPY) -m dags_examples.cli_demo

# Two pytest-xdist workers (the machine has 2 cores; TEST_WORKERS=0 runs in one process): a test directory
# sharing a session server (Prefect, PostgreSQL/Spark) or a module goes to one worker whole (tests/conftest.py).
TEST_WORKERS ?= 2

test: .venv
	@mkdir -p "$(AIRFLOW_HOME)"
	$(VPY) -m ruff check .
	$(VPY) -m mypy
	$(VPY) -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadgroup

# docker/install.sh is what the Airflow image runs; images cannot be pulled here, so CI runs the same script
# against a fresh venv holding the pinned Airflow (a stand-in for the image's environment).
docker-install-check: .venv
	rm -rf .ci-airflow
	$(UV) venv --quiet --python $(VPY) .ci-airflow
	$(UV) pip sync --quiet --python .ci-airflow/bin/python $(UV_FIND_LINKS) $(LOCK) requirements/venv-tools.txt
	PYTHON=.ci-airflow/bin/python bash docker/install.sh ".[torch]"

# Core and Prefect tests on the newest Prefect 3 (no Airflow: tests/airflow is not collected; nor tests/training,
# whose Lightning/transformers tests live in the main venv; nor the default suite's property and real-data
# corpora, tests/suite and tests/realdata, nor the browser tests, tests/browser, nor the README's blocks,
# tests/test_readme.py (its Airflow blocks and `make demo` need Airflow), nor the real-engine tests, tests/engines
# (PostgreSQL, Spark), which test no Prefect code and run in `make test`).
$(LATEST_STAMP): $(LATEST_LOCK) pyproject.toml | .venv
	rm -rf $(LATEST)
	$(UV) venv --quiet --python $(VPY) $(LATEST)
	$(UV) pip sync --quiet --python $(LATEST)/bin/python $(UV_FIND_LINKS) $(LATEST_LOCK)
	$(UV) pip install --quiet --python $(LATEST)/bin/python --no-deps -e .
	@touch $@

test-prefect-latest: $(LATEST_STAMP)
	$(LATEST)/bin/python -c 'import prefect, sys; print("prefect", prefect.__version__); sys.exit("airflow" in sys.modules)'
	$(LATEST)/bin/python -m pytest -q -p no:cacheprovider tests --ignore=tests/airflow --ignore=tests/training \
		--ignore=tests/suite --ignore=tests/realdata --ignore=tests/browser --ignore=tests/test_readme.py \
		--ignore=tests/engines

bench: .venv
	$(VPY) benchmarks/data_guards.py

$(TOOLS_STAMP):
	@$(MAKE) --no-print-directory check-python
	rm -rf $(TOOLS) && $(BOOT_PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	@touch $@

# Third-party pins only (the project itself is not in the lock), resolved for
# CPython 3.11 on linux x86_64. torch is overridden to the CPU build.
lock: $(TOOLS_STAMP)
	$(TOOLS_UV) pip compile pyproject.toml --all-extras \
		--python-version 3.11 --python-platform x86_64-manylinux_2_28 \
		--constraint requirements/constraints.txt \
		--override requirements/overrides.txt \
		$(UV_FIND_LINKS) \
		--custom-compile-command "make lock" \
		--output-file $(LOCK)
	@if grep -n '^nvidia-' $(LOCK); then echo "error: CUDA packages leaked into $(LOCK)" >&2; exit 1; fi
	@grep -qx 'torch==2.13.0+cpu' $(LOCK) || { echo "error: torch is not pinned to 2.13.0+cpu" >&2; exit 1; }
	@echo "$(LOCK) OK"

# The newest Prefect 3 with the core and the prefect/torch extras, and what the tests need; no Airflow.
lock-prefect-latest: $(TOOLS_STAMP)
	$(TOOLS_UV) pip compile pyproject.toml requirements/prefect-latest.in --extra prefect --extra torch \
		--python-version 3.11 --python-platform x86_64-manylinux_2_28 \
		--override requirements/prefect-latest-overrides.txt \
		$(UV_FIND_LINKS) \
		--custom-compile-command "make lock-prefect-latest" \
		--output-file $(LATEST_LOCK)
	@if grep -n '^nvidia-\|^apache-airflow' $(LATEST_LOCK); then echo "error: CUDA or Airflow packages in $(LATEST_LOCK)" >&2; exit 1; fi
	@grep -qx 'torch==2.13.0+cpu' $(LATEST_LOCK) || { echo "error: torch is not pinned to 2.13.0+cpu" >&2; exit 1; }
	@echo "$(LATEST_LOCK) OK ($$(grep '^prefect==' $(LATEST_LOCK)))"

clean:
	rm -rf $(VENV) $(LATEST) $(TOOLS) .airflow .pytest_cache .ruff_cache .mypy_cache build dist *.egg-info
	find . -name __pycache__ -type d -not -path './.git/*' -prune -exec rm -rf {} +
