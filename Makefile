# Two commands on a fresh machine with Python 3.11+ and make:
#   make run    Observatory with an embedded PostgreSQL, a Celery worker and beat
#   make test   the whole test suite against PostgreSQL (embedded unless DATABASE_URL is set)

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP_FLAGS := --quiet --disable-pip-version-check

.PHONY: run test setup browser manage check clean

run: setup
	$(PY) -m observatory.devstack run

test: setup browser
	$(PY) -m pytest $(PYTEST_ARGS)

# Any manage.py command against the same database as `make run`: make manage ARGS="createsuperuser"
manage: setup
	$(PY) -m observatory.devstack manage $(ARGS)

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Observatory needs Python 3.11 or newer; $(PYTHON) is " + sys.version.split()[0] + ". Try: make PYTHON=python3.12 ...")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(PIP_FLAGS) -r requirements.txt
	@touch $@

browser: setup
	@$(PY) -m observatory.devstack browser

clean:
	rm -rf $(VENV) staticfiles .pytest_cache
