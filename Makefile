# erpsync: every target builds its own virtual environment from pinned requirements.
PY ?= python3
VENV := .venv
SAMVENV := .venv-sam
BIN := $(VENV)/bin
export PYTHONPATH := $(CURDIR)/layers/shared/python:$(CURDIR)
export AWS_DEFAULT_REGION ?= us-east-1
export SAM_CLI_TELEMETRY := 0

.PHONY: help venv browser demo test unit lint typecheck sam-validate build local bench chaos clean

help:
	@echo "make demo   - run the order-to-cash story on the local stack (no cloud account needed)"
	@echo "make test   - lint + every test (unit, contract, integration, e2e)"
	@echo "make lint   - ruff, mypy, sam validate --lint, sam validate"
	@echo "make build  - sam build"
	@echo "make local  - start the local stack (erpsync local up)"
	@echo "make bench  - run the benchmarks and rewrite docs/PERFORMANCE.md"
	@echo "make chaos  - 500 orders under injected faults; rewrites docs/RELIABILITY.md"

$(BIN)/.installed: requirements-dev.txt layers/shared/python/requirements.txt
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt
	echo "$(CURDIR)/layers/shared/python" > $$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/erpsync-dev.pth
	echo "$(CURDIR)" >> $$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/erpsync-dev.pth
	printf '#!/bin/sh\nexec "%s" -m cli "$$@"\n' "$(CURDIR)/$(BIN)/python" > $(BIN)/erpsync
	chmod +x $(BIN)/erpsync
	touch $@

$(SAMVENV)/bin/.installed: requirements-sam.txt
	test -d $(SAMVENV) || $(PY) -m venv $(SAMVENV)
	$(SAMVENV)/bin/pip install -q --disable-pip-version-check -r requirements-sam.txt
	touch $@

venv: $(BIN)/.installed

# The console's browser test drives Debian's headless Chromium: installed here (as root) when missing.
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "the console's browser test needs: sudo apt-get install -y chromium chromium-driver" >&2; exit 1; fi; \
	  echo "installing chromium and chromium-driver (Debian packages) for the console's browser test"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq >/dev/null && \
	  apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-liberation >/dev/null; \
	fi

STORE ?= magento
ERP ?= acumatica

demo: venv
	$(BIN)/python -m sandbox.demo --store $(STORE) --erp $(ERP)

test: lint unit

unit: venv browser
	$(BIN)/python -m pytest -n 2 --dist loadfile -q --durations=25

lint: venv $(SAMVENV)/bin/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy layers/shared/python/erpsync functions sandbox cli
	$(SAMVENV)/bin/sam validate --lint
	$(SAMVENV)/bin/sam validate --region us-east-1

build: $(SAMVENV)/bin/.installed
	$(SAMVENV)/bin/sam build

local: venv
	$(BIN)/python -m cli local up

bench: venv
	$(BIN)/python -m bench

chaos: venv
	$(BIN)/python -m bench.chaos

clean:
	rm -rf $(VENV) $(SAMVENV) .aws-sam .erpsync .pytest_cache .mypy_cache .ruff_cache
