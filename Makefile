# Everyday commands. `make run` and `make test` set everything up on a fresh machine.
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# Daphne: no 24 h socket lifetime; ping idle sockets, drop peers that stop answering; give a
# handshake 60 s (not 5) to be accepted, so a boot storm does not drop chargers mid-handshake.
DAPHNE_FLAGS ?= --websocket_timeout -1 --websocket_connect_timeout 60 --ping-interval 30 --ping-timeout 30 --websocket-max-message-size 524288
# Tests run with production-like settings, minus HTTPS redirects.
TEST_ENV := SECRET_KEY=test-only-secret DEBUG=0 SECURE_SSL_REDIRECT=0 SESSION_COOKIE_SECURE=0 CSRF_COOKIE_SECURE=0

.PHONY: install install-dev test-deps run migrate test unit e2e lint fmt migrations-check bench-smoke clean

# Serving needs only requirements.txt; tests, lint and the benchmark add requirements-dev.txt.
install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

# Debian packages the end-to-end tests drive: chromium (browser tests; a browser download is
# impossible here), haproxy (the reference TLS proxy of deploy/, security profile 2) and npm
# (axe-core for the accessibility tests, pinned by tests/e2e/browser/package-lock.json).
test-deps:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v haproxy >/dev/null 2>&1 || missing="$$missing haproxy"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	npm ci --prefix tests/e2e/browser --no-audit --no-fund --silent

migrate: install
	DEBUG=1 $(PY) manage.py migrate --noinput

run: migrate
	@# Clear what a previous run left "online", but not the stations another server on this
	@# database holds (its liveness refresh keeps their last_seen recent).
	DEBUG=1 $(PY) manage.py sweep_stale_connections --unheld
	@# -e with a backlog of 4096, not -b/-p: Twisted's default of 50 is short for a fleet reconnecting.
	DEBUG=1 $(BIN)/daphne -e tcp:port=$(PORT):interface=$(HOST):backlog=4096 $(DAPHNE_FLAGS) virta.asgi:application

unit: install-dev
	$(TEST_ENV) $(BIN)/pytest -m "not e2e"

e2e: install-dev test-deps
	$(TEST_ENV) $(BIN)/pytest -m e2e; rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 5 ]

test: unit e2e

# A 100-charger, few-second run of bench/ (the full runs: bench/README.md).
bench-smoke: install-dev
	$(TEST_ENV) $(BIN)/pytest -m e2e tests/e2e/test_bench_smoke.py

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: install-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

migrations-check: install
	$(TEST_ENV) $(PY) manage.py makemigrations --check --dry-run

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles tests/e2e/browser/node_modules
