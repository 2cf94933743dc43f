# prescaler — `make help` lists the targets.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PORT   ?= 9090

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets (variables shown with their values: make help PORT=9191)
	@awk -v PORT='$(PORT)' -v DEMO_DIR='$(DEMO_DIR)' -v VENV='$(VENV)' 'BEGIN {FS = ":.*## "} \
	  /^[a-zA-Z_-]+:.*## / { text = $$2; gsub(/\$$\(PORT\)/, PORT, text); gsub(/\$$\(DEMO_DIR\)/, DEMO_DIR, text); \
	  gsub(/\$$\(VENV\)/, VENV, text); printf "  \033[36m%-12s\033[0m %s\n", $$1, text }' $(MAKEFILE_LIST)

# Dependencies from the hashed lock (requirements/compile.sh regenerates it), then prescaler alone.
$(BIN)/prescaler: pyproject.toml requirements/lock-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r requirements/lock-dev.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e '.[dev]'
	@touch $@

.PHONY: install
install: $(BIN)/prescaler ## create .venv; install the locked dependencies (requirements/lock-dev.txt), then prescaler

.PHONY: run
run: install ## serve on :$(PORT) with the embedded replay trace (no Prometheus needed)
	$(BIN)/prescaler serve --grpc-port $(PORT)

DEMO_DIR ?= /tmp/prescaler-demo

.PHONY: demo
demo: install ## what-if: predictive vs reactive vs oracle on a bundled NYC-taxi excerpt (1-2 min on 2 CPUs)
	$(BIN)/prescaler simulate --trace scaler/traces/nyc_taxi_10d.csv --history 7d --days 2 \
	  --startup 180s --slo 2s --peak-replicas 20 --policies reactive,predictive,holt_winters,oracle \
	  --json $(DEMO_DIR)/simulate.json --plot $(DEMO_DIR)/simulate.png

.PHONY: proto
proto: install ## regenerate the gRPC stubs in scaler/_generated from proto/
	PATH=$(BIN):$$PATH $(BIN)/python -m grpc_tools.protoc --proto_path=scaler/_generated=proto \
	  --python_out=. --grpc_python_out=. --mypy_out=. --mypy_grpc_out=. proto/*.proto

.PHONY: proto-check
proto-check: proto ## fail if the checked-in stubs differ from freshly generated ones
	git diff --exit-code -- scaler/_generated

.PHONY: lint
lint: install ## ruff check + format check, import-linter layer contracts
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

.PHONY: format
format: install ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

.PHONY: typecheck
typecheck: install ## mypy --strict on everything but generated code
	$(BIN)/mypy

.PHONY: system-deps
system-deps: ## install Debian's prometheus + promtool if missing (integration tests start their own)
	@command -v prometheus >/dev/null && command -v promtool >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
	  $$SUDO systemctl stop prometheus 2>/dev/null || true; }

.PHONY: test
test: install system-deps ## run the test suite (a real Prometheus is started by the tests)
	$(BIN)/pytest -q

.PHONY: check
check: proto-check lint typecheck test ## everything CI runs

.PHONY: bench
bench: install ## run the gRPC load benchmark (writes nothing); every benchmark and its reproduce steps: benchmarks/README.md
	$(BIN)/python benchmarks/grpc_load.py
