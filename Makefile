# Two commands do everything on a fresh Debian machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint debs venv bench screenshots clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# compat: the checkout itself on the path, so `flk sandbox` finds the sandbox, which no wheel ships.
	$(BIN)/pip install -q -e '.[dev]' --config-settings editable_mode=compat
	touch $(STAMP)

venv: $(STAMP)

# Debian packages the sandbox runs for real (and the browser, with emoji, that the workspace page is
# tested in); installed only when missing.
debs:
	@missing=""; \
	command -v prometheus >/dev/null || missing="$$missing prometheus"; \
	command -v prometheus-alertmanager >/dev/null || missing="$$missing prometheus-alertmanager"; \
	test -x /usr/lib/postgresql/15/bin/initdb || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	test -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf || missing="$$missing fonts-noto-color-emoji"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

test: venv debs lint
	$(BIN)/python -m pytest -q -n 2

# `make demo DEMO_ARGS=--keep`: the world, the bot and the workspace page keep running until Ctrl-C.
demo: venv debs
	$(BIN)/python -m sandbox.demo $(DEMO_ARGS)

bench: venv debs
	$(BIN)/python -m bench.run_all

# PNGs of the workspace page (a triage thread, a plan with Confirm, the resolve modal) for the README.
screenshots: venv debs
	$(BIN)/python -m sandbox.screenshots --out docs/screenshots

clean:
	rm -rf $(VENV) .pytest_cache
