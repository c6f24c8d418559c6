#!/usr/bin/env bash
# scripts/demo.sh [--clean] BUILD_DIR  -- the local-model demo (issue 3, item 7).
# TODO: not written yet. Plan: deploy BUILD_DIR/docker-registry with the registry-image resource
# (BUILD_DIR/images/registry-image.tar) and basic auth (generated password) into
# BUILD_DIR/demo/model via tests/localjuju/juju, relate fake:easyrsa (once TLS has landed) and
# fake:containerd, wait for "Ready at ...", write BUILD_DIR/demo/connection.json
# (registry_url, registry_netloc, basic_user, basic_password, ca_cert); --clean = `destroy` the
# model, remove leftover containers with the model's unit suffixes and BUILD_DIR/demo.
echo "demo.sh: not implemented yet (see the TODO in scripts/demo.sh)" >&2
exit 1
