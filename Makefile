# One command for everything a developer or CI does. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# sam build needs a real python3.12 binary first on PATH; the pyenv shim is not one.
PY312 ?= $(shell for p in python3.12 $$HOME/.pyenv/versions/3.12*/bin/python3.12 /usr/bin/python3.12 /usr/local/bin/python3.12; do \
	"$$p" -c 'import sys; assert sys.version_info[:2] == (3, 12)' >/dev/null 2>&1 && { command -v "$$p" || echo "$$p"; } && break; done)
VENV := .venv
SAM_VENV := .venv-sam
SAM_CLI_VERSION := 1.170.0
# checkov pins many packages of its own: it gets a virtualenv of its own too.
CHECKOV_VENV := .venv-checkov
CHECKOV_VERSION := 3.3.30
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= us-east-1
export PYTHONPATH := $(CURDIR):$(CURDIR)/shared
# Every Python started from here keeps the bytecode it compiles (a machine may set
# PYTHONDONTWRITEBYTECODE): the test suite starts hundreds of Python processes (workers,
# servers, the SAM CLI, cfn-lint), and importing from source costs each of them about three
# times the CPU (checkov's start: 15 CPU s from source, 5.6 s from its bytecode).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: help chromium install console console-screenshots dev invoke token test test-fast lint typecheck pytest catalogue errors initdb build validate checkov \
	preflight deploy sam-deploy destroy destroy-confirmed rotate-keys aws-check docker-check images bench bench-scale clean cost \
	docker docker-stop images-local test-docker compose-local compose-local-down test-compose

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

REQUIREMENTS := shared/requirements.txt functions/tasks/requirements.txt infra/services/requirements.txt

$(VENV)/.installed: pyproject.toml $(REQUIREMENTS)
	@test -n "$(PY312)" || { echo "Python 3.12 is required (python3.12 on PATH or under pyenv)"; exit 1; }
	$(PY312) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check uv
	$(VENV)/bin/uv pip install -q --python $(VENV)/bin/python $(addprefix -r ,$(REQUIREMENTS)) --group dev
	touch $@

$(SAM_VENV)/.installed:
	$(PY312) -m venv $(SAM_VENV)
	$(VENV)/bin/uv pip install -q --python $(SAM_VENV)/bin/python aws-sam-cli==$(SAM_CLI_VERSION)
	touch $@

$(CHECKOV_VENV)/.installed: $(VENV)/.installed
	$(PY312) -m venv $(CHECKOV_VENV)
	echo '*' > $(CHECKOV_VENV)/.gitignore  # git and ruff leave it alone (as Python 3.13's venv does)
	$(VENV)/bin/uv pip install -q --python $(CHECKOV_VENV)/bin/python checkov==$(CHECKOV_VERSION)
	touch $@

# The docs-page test drives Debian's Chromium (Playwright's own browser download cannot run here).
chromium:
	@command -v chromium >/dev/null || { test "$$(id -u)" = 0 && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
		{ echo "Chromium is needed for the docs-page test: apt-get install chromium"; exit 1; }
	@# a Chinese font, or the console's Chinese screenshots show boxes
	@fc-list :lang=zh 2>/dev/null | grep -q . || { test "$$(id -u)" = 0 && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-microhei >/dev/null; } || \
		echo "For the console's Chinese screenshots: apt-get install fonts-wqy-microhei"

install: $(VENV)/.installed $(SAM_VENV)/.installed $(CHECKOV_VENV)/.installed chromium ## .venv (app + dev tools), .venv-sam (SAM CLI), .venv-checkov, Chromium

# The admin console's locked packages (console/package-lock.json), installed when missing or stale.
console/node_modules/.package-lock.json: console/package-lock.json
	cd console && npm ci --no-audit --no-fund
	touch $@

console: console/node_modules/.package-lock.json ## type-check and build the admin console (console/dist: the static site make deploy uploads)
	cd console && npm run typecheck && npm run build

console-screenshots: $(VENV)/.installed ## photograph every console page in both languages into docs/console/ (with axe-core's findings), by its e2e test
	CONSOLE_SCREENSHOTS=1 python -m pytest tests/e2e/test_console.py -p no:xdist -q

# The console's packages unless DEV_CONSOLE=0 or Node is missing (make dev then runs without it).
DEV_CONSOLE_PACKAGES = $(if $(filter 0,$(DEV_CONSOLE)),,$(if $(shell command -v npm),console/node_modules/.package-lock.json))
dev: $(VENV)/.installed $(DEV_CONSOLE_PACKAGES) ## run everything locally (Ctrl-C stops); ports: GATEWAY_PORT=3000 REALTIME_PORT=3001 DEV_REDIS_PORT=6390 DEV_MONGO_PORT=27027 DEV_S3_PORT=9000 CONSOLE_PORT=5173 (DEV_CONSOLE=0: no console)
	python -m infra.local.dev

invoke: $(VENV)/.installed ## invoke one function on make dev's datastores: make invoke FN=AuthFunction EVENT=events/auth/user_info.json TOKEN=<make token's output>
	python -m infra.local.gateway invoke $(FN) --event $(EVENT) --dev $(if $(TOKEN),--token "$(TOKEN)")

# USERNAME, not USER: the shell already sets USER to the login name.
USERNAME ?= admin
token: $(VENV)/.installed ## print an access token from the running make dev: make token [USERNAME=admin PASSWORD=…]
	@python -m infra.local.token --username "$(USERNAME)" $(if $(PASSWORD),--password "$(PASSWORD)")

test: install lint typecheck pytest ## everything CI runs: lint, types, the whole test suite

lint: $(VENV)/.installed ## ruff check and format check
	ruff check .
	ruff format --check .

typecheck: $(VENV)/.installed ## mypy --strict over the shared layer, functions and infra
	mypy shared/multidb functions/*/*_fn infra

# Both passes run on pytest-xdist workers (WORKERS of them, each with a database and a Redis
# server of its own: tests/conftest.py), a test file to a worker. The embedded pass is there
# for SQLite and the embedded Redis: it runs the tests outside tests/unit and tests/e2e (whose
# `make dev` has datastores of its own) again, but those marked
# `first_pass_only` (the deployed shape, the build artifacts, what tests no datastore of its
# own, and what runs on the servers both passes share: each file says why).
# Five on our 2-core machines: the tests wait (on processes, browsers, timers) more than they
# compute, and three workers kept the two cores about 64% busy (first pass 10 min 21 s); five
# keep them busy and took 8 min 18 s under another run's load (docs/testing.md).
WORKERS ?= 5
# A file to a worker (a folder, where its files share a fixture: tests/conftest.py).
XDIST = -n $(WORKERS) --dist loadfile

pytest: install ## the test suite on real PostgreSQL/Redis, then the integration tests again on the embedded defaults
	python -m pytest $(XDIST) --durations=10 $(PYTEST_ARGS)
	TEST_EMBEDDED=1 python -m pytest tests --ignore=tests/unit --ignore=tests/e2e -m "not first_pass_only" \
		$(XDIST) -q --durations=10 $(PYTEST_ARGS)

# The folders that hold unit tests: tests/unit, and a domain's folder where a file is marked unit.
test-fast: $(VENV)/.installed ## the unit tier alone (no datastore, no child process): the inner loop
	python -m pytest tests/unit tests/files -m unit -q $(PYTEST_ARGS)

catalogue: $(VENV)/.installed ## regenerate shared/multidb/catalogue.json from the functions' routes
	python -m infra.deploy.catalogue

errors: $(VENV)/.installed ## regenerate docs/api.md's table of error names from the error classes
	python -m infra.deploy.errors_table

initdb: $(VENV)/.installed ## migrate, sync the route catalogue, create the admin user
	python -m infra.deploy.initdb

validate: $(SAM_VENV)/.installed ## cfn-lint (every rule, informational too) and sam validate --lint on the root and nested templates
	$(SAM_VENV)/bin/cfn-lint --include-checks I --non-zero-exit-code informational -- $(TEMPLATES)
	$(SAM_VENV)/bin/sam validate --lint

checkov: $(VENV)/.installed $(SAM_VENV)/.installed $(CHECKOV_VENV)/.installed ## checkov over the templates and the root as SAM translates it (skips: .checkov.yaml)
	@mkdir -p .aws-sam
	$(SAM_VENV)/bin/python tests/integration/sam_translate.py template.yaml | \
		$(VENV)/bin/python -c 'import json, sys; print(json.dumps(json.load(sys.stdin)["template"]))' > .aws-sam/template.translated.json
	$(CHECKOV_VENV)/bin/checkov --config-file .checkov.yaml $(addprefix --file=,$(TEMPLATES)) \
		--file=.aws-sam/template.translated.json

# ---------------------------------------------------------------- AWS
# ARCH: the functions' and the layer's CPU; the deploy function's Makefile reads ARCHITECTURE.
STAGE ?= dev
ARCH ?= arm64
TEMPLATES := template.yaml infra/deploy/stacks/network.yaml infra/deploy/stacks/data.yaml infra/deploy/stacks/services.yaml \
	infra/deploy/stacks/monitoring.yaml infra/deploy/stacks/console.yaml
# More parameters for one deploy, e.g. PARAMETERS="NatGateway=true MongoUrl=mongodb+srv://…" (staging, prod)
PARAMETERS ?=
# Targets that must run before sam deploy: the container images (DEPLOY_PREREQUISITES= skips
# them and keeps the images the stack runs).
DEPLOY_PREREQUISITES ?= images
SAMCONFIG = $(VENV)/bin/python -c 'import sys, tomllib; c = tomllib.load(open("samconfig.toml", "rb"))[sys.argv[1]]["deploy"]["parameters"]; v = c[sys.argv[2]]; print(" ".join(v) if isinstance(v, list) else v)'
STACK = $(shell $(SAMCONFIG) $(STAGE) stack_name)
REGION = $(shell $(SAMCONFIG) $(STAGE) region)
STACK_OUTPUT = aws cloudformation describe-stacks --region $(REGION) --stack-name $(STACK) --output text \
	--query "Stacks[0].Outputs[?OutputKey=='$(1)'].OutputValue"
PLATFORM_arm64 := linux/arm64
PLATFORM_x86_64 := linux/amd64
# The images' tag: the hash of what goes into them (infra/deploy/images.py); without the
# images step, the tag the stack runs now.
IMAGE_TAG = $(if $(filter images,$(DEPLOY_PREREQUISITES)),$$(python -m infra.deploy.images tag --platform $(PLATFORM_$(ARCH))),$$($(call STACK_OUTPUT,ImageTag) 2>/dev/null | sed 's/^None$$//'))

# Lambda's /var/task and /opt are read-only and sam build compiles nothing, so a container
# would compile every module it imports at each cold start: the build ships their bytecode
# (unchecked-hash: valid whatever the files' times in the zip; any Python 3.12 reads it).
BUILD_DIR ?= .aws-sam/build
build: $(VENV)/.installed $(SAM_VENV)/.installed ## sam build (functions, shared layer, deploy function) for ARCH (arm64 by default) into BUILD_DIR, with bytecode
	ARCHITECTURE=$(ARCH) $(SAM_VENV)/bin/sam build --build-dir $(BUILD_DIR) --parameter-overrides Architecture=$(ARCH)
	$(VENV)/bin/python -m compileall -q -j 0 --invalidation-mode unchecked-hash $(BUILD_DIR)

aws-check: $(VENV)/.installed
	@command -v aws >/dev/null || { echo "make deploy needs the AWS CLI v2 (https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html), then 'aws configure' or 'aws sso login'."; exit 1; }
	@aws sts get-caller-identity --region $(REGION) >/dev/null 2>&1 || { echo "The AWS CLI has no working credentials for $(REGION): run 'aws configure' (or 'aws sso login'), or set AWS_PROFILE."; exit 1; }
	@echo "Deploying $(STACK) to account $$(aws sts get-caller-identity --query Account --output text) in $(REGION)"

docker-check:
	@command -v docker >/dev/null && docker info >/dev/null 2>&1 || { echo "make deploy needs Docker (with buildx) to build the worker, beat and Socket.IO images: install it and start it, or deploy with DEPLOY_PREREQUISITES= to keep the images the stack runs."; exit 1; }

# A stack without image repositories yet (a first deploy) is deployed once with no task
# running; every deploy then pushes what the repositories lack before sam deploy passes the tag.
images: aws-check docker-check build ## build and push the worker, beat and Socket.IO images a deploy needs (Docker)
	@$(call STACK_OUTPUT,WorkerRepositoryUri) 2>/dev/null | grep -v '^None$$' | grep -q . || { \
		echo "First deploy of $(STACK): creating it, with its image repositories, before the images can be pushed"; \
		$(MAKE) --no-print-directory sam-deploy IMAGE_TAG= ; }
	python -m infra.deploy.images push --stack $(STACK) --region $(REGION) --platform $(PLATFORM_$(ARCH))

# The console's origin joins the stage's CorsAllowOrigins (the API's, the bucket's and Socket.IO's
# CORS): the stack's ConsoleUrl output, none before the first deploy (deploy then deploys again).
CONSOLE_URL = $$($(call STACK_OUTPUT,ConsoleUrl) 2>/dev/null | sed 's/^None$$//')
CONSOLE_CORS = $$(python -m infra.deploy.console_site cors --stage $(STAGE) --origin "$(CONSOLE_URL)" --parameters '$(PARAMETERS)')
sam-deploy:
	$(SAM_VENV)/bin/sam deploy --config-env $(STAGE) --template-file $(BUILD_DIR)/template.yaml --no-progressbar \
		--parameter-overrides $$($(SAMCONFIG) $(STAGE) parameter_overrides) Architecture=$(ARCH) ImageTag=$(IMAGE_TAG) \
		$(PARAMETERS) $(CONSOLE_CORS)

# Seconds of read-only calls before anything is built: credentials, the Region's features, the
# service-linked roles (created here, the only thing it creates), Lambda, VPC and Elastic IP
# quotas, Docker when the images are built; one line saying what to do for each problem.
preflight: $(VENV)/.installed ## check the account and Region for a stage before deploying it: make preflight STAGE=…
	python -m infra.deploy.preflight --stage $(STAGE) --architecture $(ARCH) --parameters '$(PARAMETERS)' \
		$(if $(filter images,$(DEPLOY_PREREQUISITES)),--images)

deploy: preflight aws-check build $(DEPLOY_PREREQUISITES) $(if $(shell command -v npm),console) ## deploy a stage: make deploy STAGE=dev|staging|prod [ARCH=x86_64] [PARAMETERS="K=V …"]
	@$(MAKE) --no-print-directory sam-deploy
	@origin=$(CONSOLE_URL); \
	listed=$$(aws cloudformation describe-stacks --region $(REGION) --stack-name $(STACK) --output text \
		--query "Stacks[0].Parameters[?ParameterKey=='CorsAllowOrigins'].ParameterValue"); \
	case ",$$listed," in *",$$origin,"*) ;; *) test -z "$$origin" || { \
		echo "Adding the console's origin $$origin to CorsAllowOrigins (a second deploy, once)"; \
		$(MAKE) --no-print-directory sam-deploy; };; esac
	@if test -f console/dist/index.html; then python -m infra.deploy.console_site upload --stack $(STACK) --region $(REGION); \
	else echo "No console build (it needs Node 20+: make console): the console's site is left as it was"; fi
	@url=$$($(call STACK_OUTPUT,ApiUrl)) && \
	echo "API: $$url" && \
	echo "Admin password: aws secretsmanager get-secret-value --region $(REGION) --secret-id $(STACK)/admin --query SecretString --output text" && \
	$(VENV)/bin/python -c 'import json, sys, urllib.request; \
		r = urllib.request.urlopen(sys.argv[1] + "/api/v1/auth/keys/public", timeout=30); \
		key = json.load(r)["data"]["publicKey"]; assert key.startswith("-----BEGIN PUBLIC KEY"), key; \
		print("Smoke test: GET /api/v1/auth/keys/public ->", r.status)' "$$url"
	@url=$$($(call STACK_OUTPUT,RealtimeUrl)) && echo "Socket.IO: $$url" && \
	test -z "$$($(call STACK_OUTPUT,ImageTag) | sed 's/^None$$//')" || { \
		body=$$(curl -sS -f --max-time 30 "$$url/socket.io/?EIO=4&transport=polling"); code=$$?; \
		case $$code in \
			0) case "$$body" in 0{*) echo "Smoke test: Engine.IO handshake -> 200";; *) echo "Unexpected answer: $$body"; exit 1;; esac;; \
			6) echo "$$url does not resolve yet: point RealtimeDomainName at the LoadBalancerDnsName output";; \
			*) echo "Smoke test failed: the Socket.IO endpoint answered with an error (curl exit $$code)"; exit 1;; \
		esac; }

# What a stage costs at us-east-1 list prices, read from its translated templates (no AWS call).
cost: $(VENV)/.installed $(SAM_VENV)/.installed ## idle monthly cost and cost per million requests: make cost STAGE=dev [PARAMETERS="K=V …"]
	python -m infra.deploy.cost --stage $(STAGE) --parameters Architecture=$(ARCH) $(PARAMETERS)

destroy-confirmed: $(VENV)/.installed
	@test "$(STAGE)" = dev -o "$(CONFIRM)" = "$(STAGE)" || { echo "Deleting $(STACK) deletes its data: run make destroy STAGE=$(STAGE) CONFIRM=$(STAGE)"; exit 1; }

# CloudFormation deletes only an empty bucket: the files bucket is emptied first (every version,
# delete marker and open upload); a stack with DeletionProtection=true is refused before that.
destroy: destroy-confirmed aws-check ## delete a stage's stack, its files first (staging/prod also need CONFIRM=<stage>); Aurora and DocumentDB leave final snapshots
	python -m infra.deploy.teardown --stack $(STACK) --region $(REGION)
	$(SAM_VENV)/bin/sam delete --config-env $(STAGE) --no-prompts

# The Socket.IO tasks read the public keys when they start (ECS injects them): they restart
# to learn the new one. The functions re-read the parameter when a token names a new kid.
rotate-keys: aws-check ## rotate a stage's JWT signing key (the previous one keeps verifying until its tokens expire)
	AWS_DEFAULT_REGION=$(REGION) python -m infra.deploy.keys rotate --secret $(STACK)/jwt-key --parameter /$(STACK)/jwt-public-keys
	aws ecs update-service --region $(REGION) --cluster "$$($(call STACK_OUTPUT,ClusterName))" \
		--service "$$($(call STACK_OUTPUT,RealtimeServiceName))" --force-new-deployment --query service.serviceName --output text

# ---------------------------------------------------------------- Docker, on this machine
# A private engine (root; Debian's docker.io installed when missing; never a system daemon's
# settings): its socket, data and the base images' cache under LOCAL_DOCKER_DIR
# (/var/tmp/multidb-docker). An engine that already answers is used as it is.
docker: $(VENV)/.installed ## start a private Docker engine unless one runs (prints the DOCKER_HOST to export)
	@python -m infra.local.engine start

docker-stop: $(VENV)/.installed ## stop the engine make docker started (its images stay cached)
	@python -m infra.local.engine stop

images-local: docker ## build the Lambda (x86_64) and python:3.12-slim base images here: Debian, PyPI and this machine's Python
	python -m infra.local.base_images

# Not in make test (minutes, root, an engine): sam local start-api on the x86_64 build against
# the same datastores as make dev's gateway, one table of requests to both (docs/local.md).
# x86_64: these machines run no arm64 code. (Target variables: the build below gets them too.)
test-docker: ARCH = x86_64
test-docker: BUILD_DIR = .aws-sam/build-x86_64
test-docker: images-local build ## tests/docker: the sam local parity test and the compose test (make test-compose)
	DOCKER_TESTS=1 DOCKER_HOST=$$(python -m infra.local.engine host) SAM_BUILD_DIR=$(BUILD_DIR) \
		python -m pytest tests/docker -p no:xdist -rP --durations=5 $(PYTEST_ARGS)

# compose.yaml on images built here (compose.local.yaml: Debian's PostgreSQL and Redis, the
# SecantusDB and moto stand-ins, the app images with pip on a host-made wheelhouse), run by
# Debian's docker-compose 1.29 (installed when missing). COMPOSE_ARGS: any docker-compose arguments.
COMPOSE_ARGS ?= --profile app up -d --build
compose-local: docker ## docker-compose on infra/local/compose.yaml, every image built here (COMPOSE_ARGS="--profile app up -d --build")
	python -m infra.local.compose $(COMPOSE_ARGS)

compose-local-down: docker ## stop and remove what make compose-local started, volumes included
	python -m infra.local.compose --profile app down -v --remove-orphans

test-compose: docker ## the compose test alone: --profile app up on the images built here, a task run to a browser socket
	DOCKER_TESTS=1 DOCKER_HOST=$$(python -m infra.local.engine host) \
		python -m pytest tests/docker/test_compose_local.py -p no:xdist -rP --durations=5 $(PYTEST_ARGS)

bench: $(VENV)/.installed $(SAM_VENV)/.installed ## cold start to 1st response, RSS, warm latency, after-restore, sizes of the make build artifacts, as ratios to a floor (BENCH_ARGS=--quick)
	python -m tests.benchmarks.bench $(BENCH_ARGS)

bench-scale: $(VENV)/.installed ## warm p50/p99 of each route at 1x, 10x, 100x data, as ratios to 1x (BENCH_ARGS="--scales 1,10 --calls 50")
	python -m tests.benchmarks.scale $(BENCH_ARGS)

clean: ## remove virtualenvs, build output and local data
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) .aws-sam .local .pytest_cache .mypy_cache .ruff_cache
