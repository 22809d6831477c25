# The README's commands, one target each. `make help` lists them.
PYTHON ?= python3
STACK  := $(PYTHON) config/stack

.PHONY: help serve test bench install stop stop-simulator clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

serve: ## Install what is missing, start PostgreSQL, Redis, Solr and CKAN at http://127.0.0.1:PORT (5000)
	@$(STACK) serve

test: ## Start private test services, run every test tier (unit, integration, browser), stop them
	@$(STACK) test $(PYTEST_ARGS)

bench: ## Benchmarks on a fresh private stack; figures to bench/results/latest.json (BENCH=harvest|datastore|city|pages|realtime|english|keys, BENCH_ARGS)
	@$(STACK) bench $(BENCH) -- $(BENCH_ARGS)

install: ## Only install: Debian packages, .venv, Solr jars
	@$(STACK) install

stop: ## Stop services left running by a killed `make serve`, `make test` or `make bench`
	@$(STACK) stop

stop-simulator: ## Stop the demo's car-park feed simulator of a running `make serve` (its page then shows the feed interrupted)
	@$(STACK) stop-simulator

clean: ## Remove all local state (databases, index, logs, config, secrets)
	@$(STACK) clean
