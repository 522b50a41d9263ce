# One entry point, used the same way on a laptop and in CI (.ci/run runs `make test`).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(VENV)/bin
LAB ?= /tmp/kubediag-lab
SCENARIO ?= healthy
KDLAB := PYTHONPATH=tests/lab $(BIN)/python -m kdlab
PYTEST := $(BIN)/python -m pytest -p no:cacheprovider

.PHONY: help setup test unit integration sanity lint importer changelog-lint demo bench mutation \
        lab-up lab-down lab-list lab-exec lock

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

setup: ## install everything (Debian packages, .venv from tests/requirements.lock); quick when done
	@tests/tools/setup.sh

test: setup ## every test: unit, lab integration, sanity, lint, galaxy-importer
	@$(MAKE) --no-print-directory --keep-going unit integration sanity lint importer

unit: setup ## pytest unit tests
	$(PYTEST) tests/unit

integration: setup ## lab integration tests (need root: they build network namespaces); two at a time, labs are independent
	$(PYTEST) -n 2 --dist load tests/integration

sanity: setup ## ansible-test sanity, no ignore file
	tests/tools/sanity.sh

lint: setup changelog-lint ## ruff, ansible-lint --profile production, the execution environment definition
	$(BIN)/ruff check .
	$(BIN)/ansible-lint --profile production
	ctx=$$(mktemp -d) && $(BIN)/ansible-builder create -f docs/examples/execution-environment.yml -c $$ctx >/dev/null && rm -rf $$ctx

changelog-lint: setup
	$(BIN)/antsibull-changelog lint

importer: setup ## build the collection tarball and run galaxy-importer on it
	tests/tools/importer.sh

demo: setup ## bring up a broken lab, diagnose it, print the report, tear it down
	tests/tools/demo.sh

bench: setup ## the benchmarks
	tests/tools/bench.sh

mutation: setup ## mutation testing of the verdict, probe, report and cloud evaluators (MUTATION_MODULES narrows it)
	tests/tools/mutation.sh

lab-up: setup ## make lab-up SCENARIO=<name or path.yml> LAB=<dir>
	$(KDLAB) up --scenario $(SCENARIO) --lab $(LAB)

lab-down: setup ## make lab-down LAB=<dir>
	$(KDLAB) down --lab $(LAB)

lab-list: setup ## the bundled scenarios, one per line
	@$(KDLAB) list

lab-exec: setup ## make lab-exec LAB=<dir> POD=<ns/name> CMD='<command line>'
	@$(KDLAB) exec --lab $(LAB) --pod $(POD) -- $(CMD)

lock: ## regenerate tests/requirements.lock from tests/requirements.in
	rm -rf .lock-venv && python3 -m venv .lock-venv && .lock-venv/bin/pip install -q -U pip
	.lock-venv/bin/pip install -q -r tests/requirements.in
	.lock-venv/bin/pip freeze --exclude-editable > tests/requirements.lock && rm -rf .lock-venv
