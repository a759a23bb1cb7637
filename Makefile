# Every target installs uv when it is missing and syncs the locked environment first.
SHELL := /bin/bash
PY_UV = python3 -m uv

.PHONY: run test check fmt schema bench uv sync node browser lambda

uv:
	@python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv

sync: uv
	@$(PY_UV) sync --frozen --quiet

run: sync
	$(PY_UV) run --frozen --no-sync walletql serve

# The test node (anvil) and ERC-20 artifacts come from npm, pinned in tests/node.
node:
	@if command -v npm >/dev/null 2>&1; then \
	  if [ ! -f tests/node/node_modules/.installed ] || [ tests/node/package-lock.json -nt tests/node/node_modules/.installed ]; then \
	    (cd tests/node && npm ci --no-audit --no-fund --loglevel=error) && touch tests/node/node_modules/.installed; \
	  fi; \
	else echo "npm not found: the anvil tests will be skipped (and fail in CI)"; fi

# Headless Chromium for the browser test: Debian's package, installed when missing (as root).
browser:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; \
	  else echo "chromium not found (install Debian's chromium as root): the browser test will be skipped (and fail in CI)"; fi; \
	fi

test: sync node browser
	$(PY_UV) run --frozen --no-sync pytest

check: sync
	$(PY_UV) run --frozen --no-sync ruff format --check .
	$(PY_UV) run --frozen --no-sync ruff check .
	$(PY_UV) run --frozen --no-sync mypy

# Every benchmark in bench/, one after another (a few minutes); prints Markdown tables.
bench: sync node
	$(PY_UV) run --frozen --no-sync python -m bench

# The worker's AWS Lambda package for the python3.12 runtime (x86_64): dist/walletql-worker-lambda.zip.
# Bytecode goes in when a Python 3.12 is found; name one with LAMBDA_INTERPRETER=/path/to/python3.12.
lambda: sync
	$(PY_UV) run --frozen --no-sync python -m walletql.lambda_build $(if $(LAMBDA_INTERPRETER),--interpreter $(LAMBDA_INTERPRETER))

schema: sync
	$(PY_UV) run --frozen --no-sync walletql schema > schema.graphql

fmt: sync
	$(PY_UV) run --frozen --no-sync ruff format .
	$(PY_UV) run --frozen --no-sync ruff check --fix .
