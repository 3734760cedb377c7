# Every target creates .venv on first use and installs the pinned stack from constraints.txt.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: example check check-statistical check-browser bench schema reference validation mutation planted golden lock clean check-interrupts warm-up-run

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found; run: make PYTHON=python3 ..."; exit 2; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test,nutpie,dask]'
	@touch $(STAMP)

# The single-pool example (its exit code is make's), then the portfolio example (6 pools, two
# at a time); prints where every report is. Exit 3 of the portfolio (a pool blocked) is a result.
example: $(STAMP)
	@$(BIN)/marketbayesmeta-run examples/config.yaml; status=$$?; \
	echo ""; \
	echo "Report:  $(CURDIR)/output/example_geo_sales_uplift/report.html (open it in a browser)"; \
	echo "         $(CURDIR)/output/example_geo_sales_uplift/analysis_report.md"; \
	echo ""; \
	echo "The portfolio example (examples/portfolio.yaml: one pool per metric and channel):"; \
	$(BIN)/marketbayesmeta-run examples/portfolio.yaml --jobs 2; pstatus=$$?; \
	echo "Portfolio report:  $(CURDIR)/output/example_portfolio/portfolio_report.html (exit code $$pstatus)"; \
	for d in $(CURDIR)/output/example_portfolio/pools/*/; do echo "  pool report:     $${d}report.html"; done; \
	echo ""; \
	echo "The marketbayesmeta command is in .venv/bin; to use it in this shell:"; \
	echo "         . .venv/bin/activate      (or: export PATH=\$$PWD/.venv/bin:\$$PATH)"; \
	if [ $$status -eq 0 ] && [ $$pstatus -ne 0 ] && [ $$pstatus -ne 3 ]; then status=$$pstatus; fi; \
	exit $$status

# Tests run on every core (pytest-xdist; JOBS=1 for one process, e.g. to debug a test).
JOBS ?= auto
XDIST = -n $(JOBS) --dist worksteal

check: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q $(XDIST) -m "not statistical and not browser and not exhaustive"

check-interrupts: $(STAMP)
	$(BIN)/python -m pytest -q $(XDIST) -m exhaustive

check-statistical: $(STAMP)
	$(BIN)/python -m pytest -q $(XDIST) -m statistical

# report.html in headless Chromium (Debian package chromium; .ci/run installs it). Skipped, loudly,
# where chromium is missing. Screenshots: $$MBM_ARTIFACTS (default /tmp/marketbayesmeta-artifacts).
check-browser: $(STAMP)
	$(BIN)/python -m pytest -q -m browser

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

schema: $(STAMP)
	$(BIN)/python -m marketbayesmeta.schemas specs

# Regenerate the generated sections of docs/reference.md (commands, config keys, tracker columns,
# outputs) from the code; tests/test_reference_docs.py fails when they are out of step.
reference: $(STAMP)
	$(BIN)/python tests/reference_docs.py --write

# docs/validation/snapshot.md: dated results of make check, check-statistical, check-browser and bench.
# make validation SKIP_BENCH=1: the three test targets only; the figures of the last make bench.
validation: $(STAMP)
	$(BIN)/python tools/validation_snapshot.py $(if $(SKIP_BENCH),--skip-bench)

# Mutation testing (mutmut) of the modules that produce numbers or verdicts, each with the fast tests
# that cover it; summary in docs/validation/mutation.txt (and .json). Not part of .ci/run.
# A subset: make mutation MODULES="units duplicates" (names: python tools/mutation.py --list).
# After adding tests for a module's survivors: make mutation MODULES=numbers RETEST=1 (only those mutants;
# RETEST=unexplained: only those not listed in tests/mutation-notes.md).
MODULES ?=
RETEST ?=
mutation: $(STAMP)
	nice -n 10 $(BIN)/python tools/mutation.py $(if $(RETEST),--retest) $(if $(filter unexplained,$(RETEST)),--unexplained) $(MODULES)

# Issue 17's planted bugs, each alone in a scratch copy, against the tests that should catch it (fast
# subset, then the statistical tests when those pass); docs/validation/planted-bugs.md (and .json).
# One bug: make planted BUGS="ppc_flag_and" (names: python tools/planted_bugs.py --list). Not in .ci/run.
BUGS ?=
planted: $(STAMP)
	nice -n 10 $(BIN)/python tools/planted_bugs.py $(foreach b,$(BUGS),--only $(b))

# Re-pin tests/data/golden/example_plan.json after a deliberate change to the plan (review the diff).
golden: $(STAMP)
	$(BIN)/python tests/golden.py

# Re-make the canned run the report kernel warms up on (src/marketbayesmeta/report/warm_up_run/) after
# a change to an output file's columns (tests/test_report_warm_up.py says when).
warm-up-run: $(STAMP)
	$(BIN)/python tools/warm_up_run.py

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
