# jalon: `make demo` runs the one-command tour; `make test` runs the whole suite.
# Both create .venv and install the project (editable) when needed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DOCUMENT_PACKAGES := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core

.PHONY: setup demo test fuzz serve bench bench-bitrix24 scale check-invoices clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "jalon needs Python 3.11 or newer")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@# WeasyPrint renders the invoice PDFs with Pango; HarfBuzz-subset keeps their fonts small, fast
	@(ldconfig -p | grep -q libpango-1.0 && ldconfig -p | grep -q libharfbuzz-subset && fc-list | grep -q DejaVuSans) \
		|| apt-get install -y $(DOCUMENT_PACKAGES) || (apt-get update && apt-get install -y $(DOCUMENT_PACKAGES))
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/jalon demo

# pytest exits 5 when it collected no test: that is a failure here, never a pass.
test: setup
	@$(BIN)/python -m pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: no tests ran" >&2; exit 1; fi; exit $$status

# The API fuzz alone (schemathesis over the whole OpenAPI document; make test runs it too): on SQLite,
# and on PostgreSQL when JALON_TEST_POSTGRES_URL is set; it prints its run time per engine.
fuzz: setup
	@$(BIN)/python -m pytest tests/api/test_fuzz.py $(PYTEST_ARGS)

# Checks invoices against the official rules (Factur-X XSD, EN 16931, Factur-X and BR-FR schematrons, from
# ../shared/standards or JALON_STANDARDS_DIR): make check-invoices DIR=folder-or-file; exits 1 on any failure.
check-invoices: setup
	$(BIN)/python -m tests.core.documents.official $(DIR)

# jalon serve seals secrets with JALON_SECRET_KEYS; without one, make serve keeps a key of its
# own in .jalon-secret-keys (owner-only; back it up with the database: it opens its secrets)
serve: setup
	@test -n "$$JALON_SECRET_KEYS" || test -s .jalon-secret-keys \
		|| (umask 077 && $(BIN)/jalon secrets generate-key > .jalon-secret-keys)
	JALON_SECRET_KEYS="$${JALON_SECRET_KEYS:-$$(cat .jalon-secret-keys)}" $(BIN)/jalon serve

# Optional, not part of the tests: the intake benchmark (figures depend on the machine).
# Its closed-loop phases use wrk (a load generator that costs little CPU); BENCH_ARGS
# are passed on, e.g. BENCH_ARGS='--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test'.
bench: setup
	@command -v wrk >/dev/null || apt-get install -y wrk || (apt-get update && apt-get install -y wrk)
	$(BIN)/python bench/intake.py $(BENCH_ARGS)

# Optional, not part of the tests: the Bitrix24 poll benchmark (figures depend on the machine): the
# elapsed time of 1,000 mapped tasks through the plugin's reconciliation, against a local portal that
# enforces Bitrix24's leaky bucket (2 a second, bursts of 50); prints calls, 503s, seconds, memory and
# the ceiling, and exits 1 when a target fails. BITRIX24_ARGS are passed on, e.g. BITRIX24_ARGS='--tasks 200'.
bench-bitrix24: setup
	$(BIN)/python bench/bitrix24_poll.py $(BITRIX24_ARGS)

# Optional, not part of the tests: 2 jalon serve + 2 jalon worker on PostgreSQL under a steady load,
# one of each killed with SIGKILL mid-stream and restarted; prints lost and doubled (both must be 0,
# or it exits 1). It creates (and drops) a scratch database on JALON_TEST_POSTGRES_URL's server, else
# the local one's; SCALE_ARGS are passed on, e.g. SCALE_ARGS='--postgres URL --count 6000 --rate 80'.
scale: setup
	$(BIN)/python bench/scale.py $(SCALE_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
