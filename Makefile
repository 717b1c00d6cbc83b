# Two commands matter: `make run` (the whole system, embedded) and `make test` (every suite).
# Both create .venv and install the project on first use.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt 2>/dev/null | sha1sum | cut -c1-12)
PYTEST := $(PY) -m pytest -p no:cacheprovider

.PHONY: install browser run test test-unit test-integration test-e2e test-full lint typecheck schemas bench clean

# setuptools tells every editable install that it is one ("Editable installation."): noise.
$(STAMP):
	@echo "installing the project into $(VENV) (pyproject.toml or constraints.txt changed)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@rm -f $(VENV)/.installed-*
	@$(PY) -m pip install -q --upgrade pip
	@PYTHONWARNINGS='ignore:Editable installation' $(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# The dashboard's browser test drives Debian's chromium (browser downloads by test tools do
# not work offline); install it when we can (root + apt), otherwise the test says how.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "note: chromium is missing; the dashboard browser test will fail (apt-get install chromium)"; }

run: install  ## the whole system on the embedded broker and PostgreSQL
	$(PY) -m infra.stack

test: install browser  ## unit, integration (real broker + PostgreSQL) and end-to-end suites
	$(PYTEST) tests/unit tests/integration tests/e2e

test-unit: install
	$(PYTEST) tests/unit

test-integration: install
	$(PYTEST) tests/integration

test-e2e: install browser
	$(PYTEST) tests/e2e

test-full: install  ## what CI adds: the long variants (fault suite, large ground truth)
	SMARTCITY_FULL=1 $(PYTEST) tests/integration tests/e2e

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: install
	$(PY) -m mypy

schemas: install  ## regenerate JSON Schema, OpenAPI and AsyncAPI documents
	$(PY) -m schemas.export

clean:
	rm -rf $(VENV) .smartcity
