# Every target builds .venv itself when it is missing or pyproject.toml changed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv test test-long lint demo bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,sandbox]'
	touch $(STAMP)

# Bounded kill and soak tests; the whole suite stays under 10 minutes here.
# Six workers on two cores: the suite mostly waits on sockets and child processes.
# worksteal: an idle worker takes queued tests from a busy one (a few take 20 s).
TEST_WORKERS ?= 6

test: $(STAMP)
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist worksteal

# The same suite with the long kill and soak tests at full size.
test-long: $(STAMP)
	ERASURE_TEST_LONG=1 $(PY) -m pytest -q -n $(TEST_WORKERS) --dist worksteal --timeout=1800

lint: $(STAMP)
	$(VENV)/bin/ruff check erasure tests bench scripts
	$(VENV)/bin/ruff format --check erasure tests bench scripts
	$(VENV)/bin/mypy

demo: $(STAMP)
	$(PY) scripts/demo.py

bench: $(STAMP)
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache demo-out
