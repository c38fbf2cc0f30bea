# Two commands for a newcomer: `make run` (the bot) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Debian packages the tests need (ffmpeg for audio work, espeak-ng for real speech fixtures,
# redis-server for the Redis store and the multi-replica tests).
SYSTEM_PACKAGES := ffmpeg espeak-ng redis-server

# Every Python dependency is pinned, with its hashes, in uv.lock (made from pyproject.toml by uv,
# which the Makefile installs into .venv from requirements-uv.txt, also hash-pinned). `uv sync
# --locked` installs exactly the lock and fails when pyproject.toml and uv.lock disagree;
# --inexact keeps uv itself (and the dev tools, for `make run` after `make test`) in .venv.
UV := $(BIN)/uv
export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_PYTHON_DOWNLOADS := never
SYNC := $(UV) sync --locked --inexact --python $(BIN)/python

.PHONY: run test lint typecheck pytest bench chaos messages system-deps clean lock lock-upgrade lock-check check hooks

$(UV): requirements-uv.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --require-hashes --no-deps -r requirements-uv.txt
	touch $@

$(VENV)/.run-installed: pyproject.toml uv.lock | $(UV)
	$(SYNC)
	touch $@

$(VENV)/.dev-installed: pyproject.toml uv.lock | $(UV)
	$(SYNC) --extra dev
	touch $@ $(VENV)/.run-installed

## make lock: pin every dependency (with hashes) in uv.lock after a change to pyproject.toml
lock: | $(UV)
	$(UV) lock

## make lock-upgrade: move every pin in uv.lock to the newest release pyproject.toml allows
lock-upgrade: | $(UV)
	$(UV) lock --upgrade

# Fails (and so does `make test`) when pyproject.toml asks for something uv.lock does not pin.
lock-check: | $(UV)
	@$(UV) lock --check || { echo "uv.lock does not match pyproject.toml: run 'make lock' and commit uv.lock"; exit 1; }

## make run: install into .venv and start the bot with the settings from .env
run: $(VENV)/.run-installed
	$(BIN)/python -m bot

## make hooks: run `make lint typecheck`'s checks before each commit (.pre-commit-config.yaml)
hooks: $(VENV)/.dev-installed
	$(BIN)/pre-commit install

## make check: the doctor: settings, Telegram, the API key, ffmpeg, the database (one line each)
check: $(VENV)/.run-installed
	$(BIN)/python -m bot check

## make test: lint, type checks and the whole pytest suite
test: lock-check $(VENV)/.dev-installed system-deps lint typecheck pytest

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy

# The tests mostly wait (on timers, subprocess bots, the fakes): four pytest-xdist workers
# overlap those waits even on two cores; worksteal evens out the long tests at the end.
PYTEST_WORKERS ?= 4
pytest: $(VENV)/.dev-installed system-deps $(BIN)/promtool
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist worksteal

## make bench: the benchmark against the fake servers (not part of the tests): the bot alone
## (Telegram's limits off), then issue 14's scenarios against a fake that enforces them, then
## what a long recording's placeholder shows (issue 17's progress)
bench: $(VENV)/.dev-installed system-deps
	$(BIN)/python -m bench
	$(BIN)/python -m bench.flood
	$(BIN)/python -m bench.progress

## make chaos: the fault soak (kill -9, Redis restart and pause, a flaky API, hostile files)
chaos: $(VENV)/.dev-installed system-deps
	$(BIN)/python -m bench.chaos

# Babel's default mapping (every .py under bot/, keywords _, ngettext, N_...): tests/test_i18n.py
# extracts the same way to check the catalogues.
## make messages: extract the texts into bot/locales/messages.pot and update every catalogue
messages: $(VENV)/.dev-installed
	$(BIN)/pybabel extract --project=Transcribot --add-comments=Translators: --add-location=file \
		--output-file=bot/locales/messages.pot bot
	$(BIN)/pybabel update --input-file=bot/locales/messages.pot --output-dir=bot/locales \
		--ignore-obsolete --previous

# Installs what is missing with apt-get (needs root, or sudo).
system-deps:
	@missing=""; \
	command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || missing="$$missing ffmpeg"; \
	command -v espeak-ng >/dev/null || missing="$$missing espeak-ng"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# promtool checks deploy/prometheus in the tests: taken from Debian's prometheus package,
# unpacked into .venv (the package is not installed: no Prometheus service is set up or
# started). Where that cannot be done the tests that need it are skipped, not failed.
$(BIN)/promtool: | $(UV)
	-@if command -v promtool >/dev/null; then ln -sf "$$(command -v promtool)" $@; \
	elif command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null; then \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		tmp=$$(mktemp -d) && cd $$tmp && \
		{ apt-get download prometheus >/dev/null 2>&1 || \
		  { $$SUDO apt-get update -qq && apt-get download prometheus >/dev/null 2>&1; }; } && \
		dpkg-deb -x prometheus_*.deb x && cp x/usr/bin/promtool $(abspath $@); \
		cd $(CURDIR); rm -rf $$tmp; \
	fi; [ -x $@ ] || echo "promtool not installed: the promtool tests will be skipped"

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
