# Stepflow: `make run` starts the service locally, `make test` runs every check. Both set themselves up.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000

.PHONY: run test lint statemachines bench bench-load bench-startup bench-dag clean token lock check-lock check-install

# Every dependency comes from a lock with hashes (make lock); then the project itself, editable and
# offline (its build backend, setuptools, is in the lock), which installs the `stepflow` command.
$(VENV)/.installed: requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $@

## run: serve the API on http://127.0.0.1:$(PORT), data kept in $(DATA_DIR) (EPHEMERAL=1: in memory; VERBOSE=1 logs each request)
DATA_DIR ?= .stepflow
run: $(VENV)/.installed $(if $(EPHEMERAL),,node_modules/.installed)
	PORT=$(PORT) $(PY) -m stepflow_local.server $(if $(EPHEMERAL),--ephemeral,--data-dir $(DATA_DIR)) $(if $(VERBOSE),--verbose)

## token: a development JWT signed with the local secret: make token ROLE=editor TENANT=acme USER=alice [GROUPS=a,b]
ROLE ?= viewer
TENANT ?= default
GROUPS ?=
token: $(VENV)/.installed
	@$(PY) -m chalicelib.tools.mint_token --role $(ROLE) --tenant $(TENANT) --user $(or $(USER),dev) --groups "$(GROUPS)"

## test: lint and type-check, check the locks, package and cfn-lint the AWS template, then the whole suite (`make check-install` proves `pip install .` separately)
test: $(VENV)/.installed node_modules/.installed browser-deps
	$(PY) -m ruff check .
	$(PY) -m mypy  # files and settings: [tool.mypy] in pyproject.toml; .mypy_cache keeps a re-run to seconds
	$(MAKE) --no-print-directory check-lock
	$(MAKE) --no-print-directory check-package
	$(PY) -m pytest -n 2 --dist loadfile  # one test file per worker: each has its own emulated AWS

## lint: ruff and mypy (the boto3 clients typed by the boto3-stubs of the dev extra)
lint: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m mypy

## statemachines: recompile the bundled examples into statemachines/
statemachines: $(VENV)/.installed
	$(PY) -m chalicelib.tools.build_statemachines

## bench: compile and scheduling benchmarks, written to bench/results.md (with the last bench-load section)
bench: $(VENV)/.installed
	$(PY) -m bench

## bench-load: the local service under load, 1,000 waiting instances, a soak (SOAK_SECONDS=60; 600 for the real figure; TRACE_MEMORY=1 lists where memory grew), cold import (~5 min)
bench-load: $(VENV)/.installed
	$(PY) -m bench.local_load

## bench-dag: random DAGs of util.sleep steps through the local service: exact scheduling beside today's planner (durations not declared and declared wrong) and a level barrier, makespans and per-step overhead (~35 min), written to bench/dag_service_results.md
bench-dag: $(VENV)/.installed
	$(PY) -m bench.dag_service

## bench-startup: time from `python -m stepflow_local.server` to its first answer, in memory and on a data directory
bench-startup: $(VENV)/.installed node_modules/.installed
	$(PY) -m bench.startup

clean:
	rm -rf $(VENV) node_modules .pytest_cache .ruff_cache .mypy_cache

# --- Web UI: Mermaid vendored into the Lambda package; browser tests on Debian's Chromium ---
.PHONY: vendor-mermaid browser-deps test-browser screenshots
UI_VENDOR := chalicelib/ui/vendor

## vendor-mermaid: copy Mermaid's browser bundle (npm, pinned in package-lock.json) into chalicelib/ui/vendor; commit it
vendor-mermaid: node_modules/.installed
	mkdir -p $(UI_VENDOR)
	{ printf '/*! mermaid %s | MIT License, see mermaid.LICENSE.txt | copied from the npm package by make vendor-mermaid */\n' \
	    "$$(node -p "require('./node_modules/mermaid/package.json').version")"; \
	  cat node_modules/mermaid/dist/mermaid.min.js; } > $(UI_VENDOR)/mermaid.min.js
	cp node_modules/mermaid/LICENSE $(UI_VENDOR)/mermaid.LICENSE.txt

## browser-deps: Debian's chromium (and fonts) for the browser tests, installed with apt when /usr/bin/chromium is missing
browser-deps:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-liberation; \
	fi

## test-browser: only the UI tests in a real browser (Chromium driven by playwright-core)
test-browser: $(VENV)/.installed node_modules/.installed browser-deps
	$(PY) -m pytest tests/browser

## screenshots: run the browser tests and keep their screenshots in docs/screenshots/
screenshots: $(VENV)/.installed node_modules/.installed browser-deps
	STEPFLOW_SCREENSHOTS=docs/screenshots $(PY) -m pytest tests/browser

# --- Deployment to AWS (issue 7): package, lint, deploy, LocalStack; see docs/deploy.md ---
.PHONY: package check-package deploy destroy aws-user aws-token test-localstack
STAGE ?= dev
PACKAGE_STAGES ?= dev prod
DEPLOY_VENV ?= build/venv-deploy
DEPLOY_PY := $(DEPLOY_VENV)/bin/python
SAM_VENV ?= build/venv-sam
DEPLOY_ARGS = --stage $(STAGE) $(if $(REGION),--region $(REGION)) $(if $(BUCKET),--bucket $(BUCKET))

# Chalice gives the Lambda functions the packaging Python's runtime: this venv is Python 3.12+.
$(DEPLOY_VENV)/.installed: requirements-deploy.txt infra/find_python.sh
	@PY312="$$(bash infra/find_python.sh)" && echo "creating $(DEPLOY_VENV) with $$PY312" && \
	  rm -rf $(DEPLOY_VENV) && "$$PY312" -m venv $(DEPLOY_VENV)
	$(DEPLOY_PY) -m pip install --quiet --require-hashes -r requirements-deploy.txt  # its pip is below 26.3, as chalice package needs
	touch $@

## package: build/package/$(STAGE)/ = sam.json (chalice package + infra/build.py merged), deployment.zip, SIZE.md
package: $(DEPLOY_VENV)/.installed
	$(DEPLOY_PY) -m infra.package --stage $(STAGE)

# The SAM transform (aws-sam-translator) pins a pydantic the app's pin excludes: its own venv.
$(SAM_VENV)/.installed: requirements-deploy-sam.txt infra/find_python.sh
	@PY312="$$(bash infra/find_python.sh)" && rm -rf $(SAM_VENV) && "$$PY312" -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --require-hashes -r requirements-deploy-sam.txt
	touch $@

## check-package: package each of $(PACKAGE_STAGES), run the SAM transform offline, cfn-lint both (errors or warnings fail)
check-package: $(DEPLOY_VENV)/.installed $(SAM_VENV)/.installed
	@for stage in $(PACKAGE_STAGES); do \
	  $(DEPLOY_PY) -m infra.package --stage $$stage || exit 1; \
	  $(SAM_VENV)/bin/python -m infra.sam_check build/package/$$stage/sam.json || exit 1; \
	  $(DEPLOY_VENV)/bin/cfn-lint --non-zero-exit-code warning build/package/$$stage/sam.json build/package/$$stage/transformed.json || exit 1; \
	  echo "cfn-lint $$($(DEPLOY_VENV)/bin/cfn-lint --version | cut -d' ' -f2): build/package/$$stage/{sam,transformed}.json: no errors, no warnings"; \
	done

## deploy: package, lint and deploy STAGE (default dev) with CloudFormation where AWS credentials exist (REGION=, BUCKET=, OWN_POOL=1 optional)
deploy: $(DEPLOY_VENV)/.installed
	$(DEPLOY_PY) -m infra.deploy $(DEPLOY_ARGS) $(if $(OWN_POOL),--own-pool)

# A user of STAGE's Cognito pool (infra/token.py); the ID token goes to stdout, everything else to stderr.
TOKEN_ARGS = --stage $(STAGE) $(if $(REGION),--region $(REGION)) --user $(NAME)

## aws-user: create or update NAME in STAGE's user pool (ROLE, TENANT, GROUPS; RESET=1 new password) and print an ID token: export TOKEN=$$(make -s aws-user STAGE=dev NAME=alice ROLE=admin)
aws-user: $(DEPLOY_VENV)/.installed
	@test -n "$(NAME)" || { echo "make aws-user: give the user a name: NAME=alice" >&2; exit 2; }
	@$(DEPLOY_PY) -m infra.token $(TOKEN_ARGS) --create --role $(ROLE) --tenant $(TENANT) --groups "$(GROUPS)" $(if $(RESET),--reset-password)

## aws-token: print NAME's ID token for STAGE (asks for the password): export TOKEN=$$(make -s aws-token STAGE=dev NAME=alice)
aws-token: $(DEPLOY_VENV)/.installed
	@test -n "$(NAME)" || { echo "make aws-token: give the user's name: NAME=alice" >&2; exit 2; }
	@$(DEPLOY_PY) -m infra.token $(TOKEN_ARGS)

## destroy: delete STAGE's stack and the state machines the API created (asks first; YES=1 does not)
destroy: $(DEPLOY_VENV)/.installed
	$(DEPLOY_PY) -m infra.deploy --destroy $(DEPLOY_ARGS) $(if $(YES),--yes)

# LocalStack runs from its own Python 3.13 venv, from a lock with hashes (requirements-localstack.txt).
LOCALSTACK_VENV ?= build/venv-localstack
LAMBDA_PACKAGES ?= build/localstack-lambda
LOCALSTACK_EXECUTOR := $(wildcard infra/localstack_executor/pyproject.toml infra/localstack_executor/*/*.py)
# What the zip is made of: `package` runs again only when one of these changed.
PACKAGE_INPUTS := app.py requirements.txt requirements-lambda-extra.txt .chalice/config.json infra/build.py infra/package.py \
	$(shell find chalicelib statemachines -type f -not -name '*.pyc' 2>/dev/null)

## test-localstack: start LocalStack here (no Docker), deploy the packaged dev stage on it, test it over HTTP, stop it
test-localstack: $(VENV)/.installed node_modules/.installed $(LOCALSTACK_VENV)/.executor $(LAMBDA_PACKAGES)/.installed \
		build/package/dev/deployment.zip
	$(PY) -m infra.localstack --lambda-python $(DEPLOY_PY) --lambda-packages $(LAMBDA_PACKAGES)

$(LOCALSTACK_VENV)/.installed: requirements-localstack.txt infra/find_python.sh
	@PY313="$$(bash infra/find_python.sh 3.13 3.13)" && echo "creating $(LOCALSTACK_VENV) with $$PY313" && \
	  rm -rf $(LOCALSTACK_VENV) && "$$PY313" -m venv $(LOCALSTACK_VENV)
	$(LOCALSTACK_VENV)/bin/python -m pip install --quiet --require-hashes --no-deps -r requirements-localstack.txt
	touch $@

# The Lambda executor plugin (infra/localstack_executor), registered in LocalStack's venv by its entry point.
$(LOCALSTACK_VENV)/.executor: $(LOCALSTACK_VENV)/.installed $(LOCALSTACK_EXECUTOR)
	rm -rf infra/localstack_executor/build infra/localstack_executor/*.egg-info
	$(LOCALSTACK_VENV)/bin/python -m pip install --quiet --no-deps --no-build-isolation --force-reinstall \
	  ./infra/localstack_executor
	rm -rf infra/localstack_executor/build infra/localstack_executor/*.egg-info
	touch $@

# What the Lambda runtime provides beside the zip (boto3), for the functions' interpreter (the packaging one).
$(LAMBDA_PACKAGES)/.installed: requirements-localstack-lambda.txt $(DEPLOY_VENV)/.installed
	rm -rf $(LAMBDA_PACKAGES)
	$(DEPLOY_PY) -m pip install --quiet --require-hashes --no-deps --target $(LAMBDA_PACKAGES) \
	  -r requirements-localstack-lambda.txt
	touch $@

build/package/dev/deployment.zip: $(DEPLOY_VENV)/.installed $(PACKAGE_INPUTS)
	$(DEPLOY_PY) -m infra.package --stage dev

# --- Locked dependencies: every transitive dependency pinned with its hashes, for Python 3.11+ on any platform ---
UV_VENV ?= build/venv-uv
UV_COMPILE = $(UV_VENV)/bin/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command "make lock"
# requirements-lambda-extra.txt is locked without dependencies: the Lambda runtime provides them (botocore).
# The locks beside the Lambda's own are constrained by it, so a package shared with the Lambda has the same
# version everywhere. A compile keeps the versions a lock already has unless its source asks for another.
$(UV_VENV)/.installed: requirements-uv.txt
	rm -rf $(UV_VENV) && $(PYTHON) -m venv $(UV_VENV)
	$(UV_VENV)/bin/python -m pip install --quiet --require-hashes -r requirements-uv.txt
	touch $@

## lock: re-resolve the locks after a change to pyproject.toml or a requirements*.in (UPGRADE=1 moves every pin to the newest allowed)
lock: $(UV_VENV)/.installed
	$(UV_COMPILE) $(if $(UPGRADE),--upgrade) requirements.in -o requirements.txt
	$(UV_COMPILE) $(if $(UPGRADE),--upgrade) --no-deps requirements-lambda-extra.in -o requirements-lambda-extra.txt
	$(UV_COMPILE) $(if $(UPGRADE),--upgrade) pyproject.toml --extra dev -c requirements.txt -o requirements-dev.txt
	$(UV_COMPILE) $(if $(UPGRADE),--upgrade) requirements-deploy.in -c requirements.txt -o requirements-deploy.txt
	$(UV_COMPILE) $(if $(UPGRADE),--upgrade) requirements-deploy-sam.in -o requirements-deploy-sam.txt
	$(UV_COMPILE) $(if $(UPGRADE),--upgrade) requirements-uv.in -o requirements-uv.txt

## check-lock: fail when a lock's pins are not what `make lock` makes from its source (an edited pyproject.toml without a re-lock)
# Pins and markers are compared, not hash lists: a wheel uploaded later to a pinned release adds a hash
# (pip skips a file whose hash the lock lacks) and must not fail the check.
check-lock: $(UV_VENV)/.installed
	@tmp="$$(mktemp -d)" && trap 'rm -rf "$$tmp"' EXIT && cp requirements*.txt "$$tmp/" && \
	  $(UV_COMPILE) requirements.in -o "$$tmp/requirements.txt" && \
	  $(UV_COMPILE) --no-deps requirements-lambda-extra.in -o "$$tmp/requirements-lambda-extra.txt" && \
	  $(UV_COMPILE) pyproject.toml --extra dev -c requirements.txt -o "$$tmp/requirements-dev.txt" && \
	  $(UV_COMPILE) requirements-deploy.in -c requirements.txt -o "$$tmp/requirements-deploy.txt" && \
	  $(UV_COMPILE) requirements-deploy-sam.in -o "$$tmp/requirements-deploy-sam.txt" && \
	  $(UV_COMPILE) requirements-uv.in -o "$$tmp/requirements-uv.txt" && \
	  for lock in requirements.txt requirements-lambda-extra.txt requirements-dev.txt requirements-deploy.txt requirements-deploy-sam.txt requirements-uv.txt; do \
	    grep -v -e '--hash=' "$$lock" > "$$tmp/committed" && grep -v -e '--hash=' "$$tmp/$$lock" > "$$tmp/made" && \
	    diff -u --label "$$lock" --label "make lock" "$$tmp/committed" "$$tmp/made" || \
	      { echo "$$lock is out of date: run make lock and commit it" >&2; exit 1; }; \
	  done && echo "check-lock: every lock pins what make lock makes from its source"

## check-install: `pip install .` into a clean venv, then the CLI against `stepflow server` from it (~1-3 min)
check-install: $(VENV)/.installed
	STEPFLOW_INSTALL_TEST=1 $(PY) -m pytest tests/install -q -p no:xdist
