# Stepflow: `make run` starts the service locally, `make test` runs every check. Both set themselves up.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000

.PHONY: run test lint statemachines bench bench-load clean token

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "pip>=24,<26.3"  # chalice package needs pip below 26.3
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $@

## run: serve the API on http://127.0.0.1:$(PORT) over the embedded AWS emulation (quiet; VERBOSE=1 logs each request)
run: $(VENV)/.installed
	PORT=$(PORT) $(PY) -m stepflow_local.server $(if $(VERBOSE),--verbose)

## token: a development JWT signed with the local secret: make token ROLE=editor TENANT=acme USER=alice [GROUPS=a,b]
ROLE ?= viewer
TENANT ?= default
GROUPS ?=
token: $(VENV)/.installed
	@$(PY) -m chalicelib.tools.mint_token --role $(ROLE) --tenant $(TENANT) --user $(or $(USER),dev) --groups "$(GROUPS)"

## test: lint, package and cfn-lint the AWS template, then the whole suite (unit, integration, end to end, browser)
test: $(VENV)/.installed node_modules/.installed browser-deps
	$(PY) -m ruff check .
	$(MAKE) --no-print-directory check-package
	$(PY) -m pytest -n 2 --dist loadfile  # one test file per worker: each has its own emulated AWS

lint: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m mypy chalicelib

## statemachines: recompile the bundled examples into statemachines/
statemachines: $(VENV)/.installed
	$(PY) -m chalicelib.tools.build_statemachines

## bench: compile and scheduling benchmarks, written to bench/results.md (with the last bench-load section)
bench: $(VENV)/.installed
	$(PY) -m bench

## bench-load: the local service under load, 1,000 waiting instances, a soak (SOAK_SECONDS=60; 600 for the real figure; TRACE_MEMORY=1 lists where memory grew), cold import (~5 min)
bench-load: $(VENV)/.installed
	$(PY) -m bench.local_load

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
.PHONY: package check-package deploy destroy test-localstack
STAGE ?= dev
PACKAGE_STAGES ?= dev prod
DEPLOY_VENV ?= build/venv-deploy
DEPLOY_PY := $(DEPLOY_VENV)/bin/python
SAM_VENV ?= build/venv-sam
DEPLOY_ARGS = --stage $(STAGE) $(if $(REGION),--region $(REGION)) $(if $(BUCKET),--bucket $(BUCKET))

# Chalice gives the Lambda functions the packaging Python's runtime: this venv is Python 3.12+.
$(DEPLOY_VENV)/.installed: requirements.txt requirements-deploy.txt infra/find_python.sh
	@PY312="$$(bash infra/find_python.sh)" && echo "creating $(DEPLOY_VENV) with $$PY312" && \
	  rm -rf $(DEPLOY_VENV) && "$$PY312" -m venv $(DEPLOY_VENV)
	$(DEPLOY_PY) -m pip install --quiet "pip>=24,<26.3"  # chalice package needs pip below 26.3
	$(DEPLOY_PY) -m pip install --quiet -r requirements-deploy.txt
	touch $@

## package: build/package/$(STAGE)/ = sam.json (chalice package + infra/build.py merged), deployment.zip, SIZE.md
package: $(DEPLOY_VENV)/.installed
	$(DEPLOY_PY) -m infra.package --stage $(STAGE)

# The SAM transform (aws-sam-translator) pins a pydantic the app's pin excludes: its own venv.
$(SAM_VENV)/.installed: requirements-deploy-sam.txt infra/find_python.sh
	@PY312="$$(bash infra/find_python.sh)" && rm -rf $(SAM_VENV) && "$$PY312" -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet -r requirements-deploy-sam.txt
	touch $@

## check-package: package each of $(PACKAGE_STAGES), run the SAM transform offline, cfn-lint both (errors or warnings fail)
check-package: $(DEPLOY_VENV)/.installed $(SAM_VENV)/.installed
	@for stage in $(PACKAGE_STAGES); do \
	  $(DEPLOY_PY) -m infra.package --stage $$stage || exit 1; \
	  $(SAM_VENV)/bin/python -m infra.sam_check build/package/$$stage/sam.json || exit 1; \
	  $(DEPLOY_VENV)/bin/cfn-lint --non-zero-exit-code warning build/package/$$stage/sam.json build/package/$$stage/transformed.json || exit 1; \
	  echo "cfn-lint $$($(DEPLOY_VENV)/bin/cfn-lint --version | cut -d' ' -f2): build/package/$$stage/{sam,transformed}.json: no errors, no warnings"; \
	done

## deploy: package, lint and deploy STAGE (default dev) with CloudFormation where AWS credentials exist (REGION=, BUCKET= optional)
deploy: $(DEPLOY_VENV)/.installed
	$(DEPLOY_PY) -m infra.deploy $(DEPLOY_ARGS)

## destroy: delete STAGE's stack and the state machines the API created (asks first; YES=1 does not)
destroy: $(DEPLOY_VENV)/.installed
	$(DEPLOY_PY) -m infra.deploy --destroy $(DEPLOY_ARGS) $(if $(YES),--yes)

## test-localstack: the LocalStack integration tests when one answers at $$LOCALSTACK_ENDPOINT (default localhost:4566)
test-localstack: $(VENV)/.installed
	$(PY) -m infra.localstack
