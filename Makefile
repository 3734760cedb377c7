# Every target creates .venv on first use and installs the pinned stack from constraints.txt.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: example check check-statistical bench schema lock clean

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found; run: make PYTHON=python3 ..."; exit 2; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test,nutpie,dask]'
	@touch $(STAMP)

example: $(STAMP)
	$(BIN)/marketbayesmeta-run examples/config.yaml

check: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q -m "not statistical"

check-statistical: $(STAMP)
	$(BIN)/python -m pytest -q -m statistical

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

schema: $(STAMP)
	$(BIN)/python -m marketbayesmeta.schemas specs

# Re-resolve the pinned versions: install the latest allowed by pyproject.toml in a scratch venv
# and write them to constraints.txt. Review the diff, run make check and make check-statistical.
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --upgrade pip
	.venv-lock/bin/python -m pip install --quiet '.[test,nutpie,dask]'
	.venv-lock/bin/python -m pip freeze --exclude marketbayesmeta > constraints.txt
	rm -rf .venv-lock

clean:
	rm -rf $(VENV) output build src/*.egg-info
