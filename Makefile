# All targets do their own set-up; run as root on Debian/Ubuntu.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BUILD := build
# all-bases: the charm's wheelhouse installs with no compiler and no network on jammy and noble,
# amd64/arm64/ppc64el/s390x (scripts/build-wheelhouse.sh); host: this host's Python only
WHEELHOUSE ?= all-bases
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help setup host venv dockerd image unit lint fmt integration charm build-test e2e test demo demo-clean bench clean

help:
	@echo "make demo | test | unit | lint | fmt | integration | charm | build-test | e2e | bench | demo-clean | clean"

# --- set-up -------------------------------------------------------------------
host:            ## Debian packages (docker.io, docker-registry, skopeo, haproxy, apache2-utils, ...)
	bash scripts/setup-host.sh

venv: $(VENV)/.done
$(VENV)/.done: tests/requirements.txt scripts/make-venv.sh
	bash scripts/make-venv.sh $(VENV)
	touch $@

dockerd: host   ## start dockerd without systemd when it is not answering
	bash scripts/dockerd.sh start

image: dockerd  ## registry image built offline from Debian's docker-registry binary
	bash scripts/build-registry-image.sh $(BUILD)/images

setup: host venv dockerd image

# --- checks -------------------------------------------------------------------
unit: venv
	$(PY) -m pytest -q tests/unit tests/security --cov=lib/charms/layer/docker_registry --cov=reactive --cov-report=term:skip-covered --cov-fail-under=90

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy -p charms.layer.docker_registry
	$(VENV)/bin/mypy reactive/docker_registry.py
	$(VENV)/bin/mypy tools/localjuju

fmt: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

integration: setup   ## lib container functions against the real engine
	$(PY) -m pytest -q tests/integration

charm: venv host
	WHEELHOUSE=$(WHEELHOUSE) bash scripts/build-charm.sh $(BUILD)

build-test: venv charm   ## the built charm's wheelhouse on jammy's/noble's Python, offline, no compiler
	BUILT_CHARM=$(CURDIR)/$(BUILD)/docker-registry $(PY) -m pytest -q -rxs tests/build

e2e: setup charm   ## the local model's own tests, then the charm's real hooks in it
	E2E_SKIP_BUILD=1 $(PY) -m pytest -q tools/localjuju/tests tests/e2e

test: setup lint unit integration build-test e2e

# --- local model ----------------------------------------------------------------
demo: setup charm
	bash scripts/demo.sh $(BUILD)

demo-clean: venv
	bash scripts/demo.sh --clean $(BUILD)

bench: setup charm
	$(PY) tests/bench/bench.py

clean: demo-clean
	rm -rf $(BUILD)
