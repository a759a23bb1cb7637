# Every target installs uv when it is missing and syncs the locked environment first.
SHELL := /bin/bash
PY_UV = python3 -m uv

.PHONY: run test check fmt schema bench uv sync node browser wrk lambda

uv:
	@python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv

# Bytecode is compiled here, once: these machines set PYTHONDONTWRITEBYTECODE, and an
# uncompiled environment pays for compiling at every start. (As a pyproject setting, every
# `uv run` would compile again and print a banner.) The project's own packages are installed
# editable, so uv leaves them to compileall (about a fifth of an API start otherwise).
sync: uv
	@$(PY_UV) sync --frozen --quiet --compile-bytecode
	@$(PY_UV) run --frozen --no-sync python -m compileall -q walletql schema resolvers services worker db migrations

run: sync
	@$(PY_UV) run --frozen --no-sync walletql serve

# From npm, pinned: the test node (anvil), ERC-20 artifacts and the frontend clients the tests
# drive (tests/node), and the Node examples, which a test runs (examples/node).
node:
	@if command -v npm >/dev/null 2>&1; then \
	  for dir in tests/node examples/node; do \
	    if [ ! -f $$dir/node_modules/.installed ] || [ $$dir/package-lock.json -nt $$dir/node_modules/.installed ]; then \
	      (cd $$dir && npm ci --no-audit --no-fund --loglevel=error) && touch $$dir/node_modules/.installed || exit 1; \
	    fi; \
	  done; \
	else echo "npm not found: the anvil and client tests will be skipped (and fail in CI)"; fi

# Headless Chromium for the browser test: Debian's package, installed when missing (as root).
browser:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; \
	  else echo "chromium not found (install Debian's chromium as root): the browser test will be skipped (and fail in CI)"; fi; \
	fi

# The HTTP load generator of bench/ (wrk: C, one thread, so it never fights the server for
# the CPU): Debian's package, installed when missing (as root).
wrk:
	@if ! command -v wrk >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null; \
	  else echo "wrk not found (install Debian's wrk as root): bench/api_throughput.py needs it"; exit 1; fi; \
	fi

test: sync node browser
	$(PY_UV) run --frozen --no-sync pytest

check: sync
	$(PY_UV) run --frozen --no-sync ruff format --check .
	$(PY_UV) run --frozen --no-sync ruff check .
	$(PY_UV) run --frozen --no-sync mypy

# Every benchmark in bench/, one after another (a few minutes); prints Markdown tables.
bench: sync node wrk
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
