# The two commands that matter: `make run` and `make test`. Both create the virtualenv on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_WORKERS ?= 2
# checkov pins boto3 and packaging below what the engine runs on, so it lives in a virtualenv of its own.
CHECKOV_VERSION := 3.3.30
CHECKOV_VENV    := $(VENV)/checkov
CHECKOV         := $(CHECKOV_VENV)/bin/checkov

.PHONY: run test test-unit test-integration test-e2e bench lint lint-deploy templates typecheck fmt clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "payments-engine needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[local,dev,bench]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/payments run

test: $(STAMP)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup tests

test-unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

test-integration: $(STAMP)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup tests/integration

test-e2e: $(STAMP)
	$(BIN)/python -m pytest tests/e2e

bench: $(STAMP)
	$(BIN)/python -m bench

lint: $(STAMP) lint-deploy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy engine actors pipelines cli config sandbox

# The CloudFormation templates and the Dockerfile: schema (cfn-lint), Dockerfile rules (hadolint), security
# policies (checkov, offline: --skip-download).
lint-deploy: $(STAMP) $(CHECKOV)
	$(BIN)/cfn-lint deploy/aws/*.yaml
	$(BIN)/hadolint Dockerfile
	$(CHECKOV) --quiet --compact --skip-download --framework cloudformation dockerfile \
		-f deploy/aws/data-plane.yaml -f deploy/aws/services.yaml -f Dockerfile

$(CHECKOV):
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet checkov==$(CHECKOV_VERSION)

# Rewrite the blocks of deploy/aws/*.yaml that come from the queue catalogue.
templates: $(STAMP)
	$(BIN)/python -m engine.broker.cloudformation

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) var build *.egg-info .pytest_cache .mypy_cache .ruff_cache
