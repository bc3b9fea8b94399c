# The two commands of the README: `make demo` and `make test`. Both install what they need.
SHELL := /bin/bash
VENV ?= .venv
SANDBOX ?= .sandbox
PYTHON ?= python3
DEBIAN_PACKAGES := mariadb-server mariadb-backup mydumper openssh-server haproxy sysbench openssl percona-toolkit
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export DEBIAN_FRONTEND := noninteractive

.PHONY: demo test test-order deps venv lint sandbox-down clean

demo: deps venv ## a fresh sandbox under a live application: plan, start, status, rehearse, cutover, the summary
	$(VENV)/bin/migrate --log-level warning demo --dir $(SANDBOX)

# Three workers on two cores: the tests mostly wait on their servers (measured on 2 cores: 857 s with 2 workers,
# 760 s with 3, the same 798 tests passing).
TEST_WORKERS ?= 3

test: deps venv ## the whole suite, on real servers the tests start themselves
	$(VENV)/bin/ruff check migrate tests bench
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadfile

test-order: deps venv ## the suite serially in reverse order, then on 2 workers shuffled (SEED=n replays a shuffle)
	MIGRATE_TEST_ORDER=reverse $(VENV)/bin/pytest -n 0
	MIGRATE_TEST_ORDER=shuffle$(if $(SEED),:$(SEED)) $(VENV)/bin/pytest -n 2 --dist load

deps: ## Debian packages, installed only when missing (apt-get update first)
	@missing=""; \
	for pkg in $(DEBIAN_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$pkg 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$pkg"; \
	done; \
	$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $@

lint: venv
	$(VENV)/bin/ruff check migrate tests bench

sandbox-down: venv
	$(VENV)/bin/migrate sandbox down --dir $(SANDBOX)

clean: ## stop the demo sandbox and remove the venv
	-[ -x $(VENV)/bin/migrate ] && $(VENV)/bin/migrate sandbox down --dir $(SANDBOX)
	rm -rf $(VENV)
