# All targets do their own set-up; run as root on Debian/Ubuntu.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BUILD := build
# The wheelhouse `make charm` ships. host: this host's Python only (the local model: demo, e2e,
# bench). all-bases: installs with no compiler and no network on jammy and noble,
# amd64/arm64/ppc64el/s390x (scripts/build-wheelhouse.sh); `make charm-all-bases` builds that
# charm apart, in $(BUILD)/all-bases, and build-test checks it.
WHEELHOUSE ?= host
ALL_BASES := $(BUILD)/all-bases
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help setup host venv dockerd image unit lint fmt integration charm charm-all-bases build-test e2e test test-engine test-offline demo demo-clean bench clean

help:
	@echo "make demo | test | unit | lint | fmt | integration | charm | charm-all-bases | build-test | e2e | bench | demo-clean | clean"

# --- set-up -------------------------------------------------------------------
host:            ## Debian packages (docker.io, docker-registry, skopeo, haproxy, apache2-utils, ...)
	bash scripts/setup-host.sh

venv: $(VENV)/.done
$(VENV)/.done: tests/requirements.txt scripts/make-venv.sh | host   # python3 -m venv needs host's packages
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
	$(VENV)/bin/mypy --disallow-untyped-defs --check-untyped-defs reactive/docker_registry.py
	$(VENV)/bin/mypy tools/localjuju

fmt: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

integration: setup   ## lib container functions against the real engine
	$(PY) -m pytest -q tests/integration

charm: venv host
	WHEELHOUSE=$(WHEELHOUSE) bash scripts/build-charm.sh $(BUILD)

charm-all-bases: venv host   ## the charm for every base, beside the host charm
	WHEELHOUSE=all-bases WHEELHOUSE_CACHE=$(BUILD)/wheel-cache bash scripts/build-charm.sh $(ALL_BASES)

build-test: venv charm-all-bases   ## that charm's wheelhouse on jammy's/noble's Python, offline, no compiler
	BUILT_CHARM=$(CURDIR)/$(ALL_BASES)/docker-registry $(PY) -m pytest -q -rxs tests/build

e2e: setup charm   ## the local model's own tests, then the charm's real hooks in it
	E2E_SKIP_BUILD=1 $(PY) -m pytest -q tools/localjuju/tests tests/e2e

# CI (.ci/run): two lanes side by side on the 2 cores, each starting once its own set-up is done
# (the venv is made while dockerd starts and the registry image builds). The engine lane runs
# e2e, the long pole; the offline lane runs the rest and then the integration tests, which
# share the one dockerd with e2e but not a name or a port (their containers are named apart,
# on free ports of 127.0.0.1; e2e's units are 127.0.0.2 and up) and end long before e2e's fault
# tests restart dockerd. Each suite's output is printed whole when it ends; a lane goes on
# after a failed suite, the run fails if any suite failed, and each lane ends with its suites'
# times.
lane = rc=0; for suite in $(1); do start=$$SECONDS; $(MAKE) --no-print-directory $$suite || rc=1; \
	echo "lane: $$suite took $$((SECONDS - start)) s"; done; exit $$rc

test:
	$(MAKE) --no-print-directory -j2 --output-sync=target test-engine test-offline

test-engine: setup
	+@$(call lane,e2e)

test-offline: venv
	+@$(call lane,lint unit build-test integration)

# --- local model ----------------------------------------------------------------
# the set-up and this host's charm (the venv is made while dockerd starts and the image builds)
demo:
	$(MAKE) --no-print-directory -j2 --output-sync=target setup charm
	bash scripts/demo.sh $(BUILD)

demo-clean: venv
	bash scripts/demo.sh --clean $(BUILD)

bench: setup charm
	$(PY) tests/bench/bench.py

clean: demo-clean
	rm -rf $(BUILD)
