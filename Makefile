# Two commands do all the set-up: `make demo` and `make test` create or reuse .venv and
# install the pinned dependencies (requirements.lock) before they run.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo up test lint format bench clean browser

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "需要 Python 3.11 / Python 3.11 is required (set PYTHON=...)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/shangliang demo --once

up: $(STAMP)
	$(BIN)/shangliang up

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The dashboard's end-to-end test drives Debian's Chromium; a CJK font makes its Chinese
# render as text instead of empty boxes. Installed only when missing.
CHROMIUM := /usr/bin/chromium

browser:
	@if [ -x $(CHROMIUM) ] && fc-list :lang=zh family 2>/dev/null | grep -q .; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO="sudo"; \
	else echo "需要 root 或 sudo 来安装 chromium 和中文字体 / root or sudo is needed to install chromium and a Chinese font: apt-get install chromium fonts-wqy-microhei"; exit 1; fi; \
	$$SUDO apt-get install -y --no-install-recommends chromium fonts-wqy-microhei \
	|| { $$SUDO apt-get update && $$SUDO apt-get install -y --no-install-recommends chromium fonts-wqy-microhei; } \
	|| { echo "无法安装 chromium 和中文字体，仪表盘测试需要它们 / could not install chromium and fonts-wqy-microhei, which the dashboard test needs"; exit 1; }

test: lint browser
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) data .pytest_cache .ruff_cache
