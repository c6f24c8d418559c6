"""End to end: client-config's JSON, consumed by the consumers' own code, configures a real
containerd that pulls from the registry.

- Canonical K8s: k8s-operator's parse_registries + ensure_registry_configs (the k8s charm's
  code, loaded from the peers directory) write containerd's hosts.d from the action's JSON; a
  private containerd 1.6 pulls with ``ctr images pull --hosts-dir`` — by the registry's
  netloc, and with mirror-for by upstream names (ghcr.io/..., docker.io/library/...) that only
  this registry holds (the test host has no route to those hosts). https + basic auth + the
  CA, all from the JSON (no credentials on ctr's command line); then plain http without
  auth, the way Canonical's own integration test for the k8s charm does it.
- charm-containerd: its parser and merge accept the JSON and its template renders a
  config.toml that a real containerd 1.6 starts with, its CRI plugin holding the mirrors and
  the auth of the JSON.

Images reach the registry as an operator's would: mirror of the list Canonical K8s prints
(``k8s list-images``), read in the local model from a stand-in for ghcr.io and docker.io, on a
real controller (``--model``) from those registries. The containerd clients run on the test
host and dial the units' addresses.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import secrets
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import grpc
import jubilant
import pytest

from tests.support import containerd, peers
from tests.support.images import make_test_image

APP = "docker-registry"
PASSWORD = "cc-" + secrets.token_urlsafe(12)
PAUSE = "ghcr.io/canonical/k8s-snap/pause:3.10"
BUSYBOX = "docker.io/library/busybox:1.36"
LISTED = [PAUSE, BUSYBOX]  # as `k8s list-images` prints them: one full reference a line
CONTAINERD_FAKE = "the containerd on the relation is the local model's requires-side fake"


@dataclass
class Registry:
    juju: jubilant.Juju
    unit: str
    netloc: str
    digests: dict[str, str]  # image as listed -> the digest mirror copied into the registry


def run(juju: jubilant.Juju, unit: str, action: str, **params) -> jubilant.Task:
    """The action's task, whether it completed or failed (jubilant raises on a failed one)."""
    try:
        return juju.run(unit, action, params)
    except jubilant.TaskError as exc:
        return exc.task


def path_of(image: str) -> str:
    return image.split("/", 1)[1]


@pytest.fixture(scope="module")
def sources(request, helpers) -> str:
    """mirror's `source=`: in the local model a plain registry in the test host's engine
    stands in for ghcr.io and docker.io (the images under their paths); on a real controller
    the units read the real registries ("")."""
    if not helpers.is_local(request.getfixturevalue("juju")):
        return ""
    start = request.getfixturevalue("upstream_registry")
    images = [(f"e2e-cc-{uuid.uuid4().hex[:6]}:{n}", path_of(i)) for n, i in enumerate(LISTED)]
    netloc = start("e2e-cc-up", images, loopback=False).gateway_netloc
    return f"ghcr.io={netloc},docker.io={netloc}"


@pytest.fixture(scope="module")
def registry(juju, charm_dir, registry_image_tar, helpers, sources) -> Registry:
    """https (the real easyrsa), basic auth, the listed images mirrored in the mirror layout."""
    helpers.deploy_registry(
        juju, charm_dir, registry_image_tar, APP, {"auth-basic-password": PASSWORD}
    )
    helpers.deploy_ca(juju)
    juju.integrate(f"{APP}:cert-provider", "easyrsa:client")
    unit = helpers.unit_of(juju, APP)
    netloc = f"{helpers.unit_address(juju, unit)}:5000"
    helpers.wait_for_unit(juju, unit, "active", f"Ready at {netloc} (https).")
    params = {"images": "\n".join(LISTED), "layout": "mirror"}
    if sources:
        params |= {"source": sources, "src-tls-verify": False}
    mirrored = run(juju, unit, "mirror", **params)
    assert mirrored.status == "completed", mirrored
    assert mirrored.results["mirror-for"] == "docker.io,ghcr.io"
    rows = json.loads(mirrored.results["results"])
    assert [r["target"] for r in rows] == [f"{netloc}/{path_of(i)}" for i in LISTED]
    return Registry(juju, unit, netloc, {r["source"]: r["digest"] for r in rows})


def k8s_hosts_dir(config_json: str, where: Path) -> Path:
    """What the k8s charm writes from its containerd-custom-registries option (its own code)."""
    k8s = peers.k8s_containerd(where)
    k8s.ensure_registry_configs(k8s.parse_registries(config_json))
    return where / "hosts.d"


def test_k8s_charm_config_pulls_by_netloc_and_by_upstream_names(registry, tmp_path):
    # GIVEN the k8s charm configured with client-config's JSON (mirror-for ghcr.io, docker.io)
    out = run(registry.juju, registry.unit, "client-config", **{"mirror-for": "ghcr.io,docker.io"})
    assert out.status == "completed", out
    entries = json.loads(out.results["k8s"])
    assert [e["host"] for e in entries] == [registry.netloc, "ghcr.io", "docker.io"]
    assert out.results["k8s-command"].startswith("juju config k8s containerd-custom-registries=")
    hosts = k8s_hosts_dir(out.results["k8s"], tmp_path / "etc-containerd")
    with containerd.running(tmp_path / "containerd") as ctrd:
        # WHEN containerd pulls the images by the names the cluster uses
        for ref, listed in [
            *((i, i) for i in LISTED),
            (f"{registry.netloc}/{path_of(PAUSE)}", PAUSE),
        ]:
            pull = ctrd.ctr("images", "pull", "--hosts-dir", str(hosts), ref)
            # THEN each comes from this registry with the digest mirror copied
            assert pull.returncode == 0, pull.stderr[-2000:]
            assert ctrd.digest(ref) == registry.digests[listed]
        # and without the configuration (no CA, no credentials) nothing is pulled
        bare = ctrd.ctr("images", "pull", f"{registry.netloc}/{path_of(BUSYBOX)}")
        assert bare.returncode != 0


def push_busybox(juju: jubilant.Juju, unit: str, helpers, tag: str) -> jubilant.Task:
    """Canonical's test pushes ghcr.io/canonical/cdk/busybox:1.36 with pull=true; the local
    model's units share the test host's engine, so there a test image built offline is used."""
    if not helpers.is_local(juju):
        return run(juju, unit, "push", image="ghcr.io/canonical/cdk/busybox:1.36", tag=tag)
    local = f"e2e-cc-plain-{uuid.uuid4().hex[:6]}:1"
    make_test_image(local)
    try:
        return run(juju, unit, "push", image=local, pull=False, tag=tag)
    finally:
        subprocess.run(["docker", "rmi", local], capture_output=True)


def test_plain_http_without_auth_as_canonicals_own_test_does(
    registry, charm_dir, registry_image_tar, helpers, tmp_path
):
    # GIVEN a second registry: no TLS, no auth, an image pushed to it
    juju = registry.juju
    unit = helpers.deploy_registry(juju, charm_dir, registry_image_tar, "plain")
    netloc = f"{helpers.unit_address(juju, unit)}:5000"
    helpers.wait_for_unit(juju, unit, "active", f"Ready at {netloc} (http).")
    pushed = push_busybox(juju, unit, helpers, f"{netloc}/busybox:1.36")
    assert pushed.status == "completed", pushed
    # WHEN client-config describes it
    out = run(juju, unit, "client-config")
    assert out.status == "completed", out
    # THEN the JSON is what Canonical's test writes by hand, and containerd pulls with it
    assert json.loads(out.results["k8s"]) == [{"url": f"http://{netloc}", "host": netloc}]
    assert "notes" not in out.results
    hosts = k8s_hosts_dir(out.results["k8s"], tmp_path / "etc-containerd")
    with containerd.running(tmp_path / "containerd") as ctrd:
        ref = f"{netloc}/busybox:1.36"
        pull = ctrd.ctr("images", "pull", "--hosts-dir", str(hosts), ref)
        assert pull.returncode == 0, pull.stderr[-2000:]
        assert ctrd.digest(ref) == pushed.results["digest"]


def charm_containerd_config(config_json: str, tmp_path: Path, relation_entry=None):
    """charm-containerd's own parser, kv and template: (parsed registries, config.toml, the
    directory its TLS files went to). ``relation_entry``: the kv entry its configure_registry
    handler keeps for a related docker-registry."""
    module = peers.charm_containerd(tmp_path / "unit-state.db")
    parsed = module.RegistryList.from_json(config_json).registries
    if relation_entry:
        module.DB.set("registry", dataclasses.asdict(relation_entry(module)))
    tls_dir = tmp_path / "etc-containerd"
    tls_dir.mkdir()
    return parsed, peers.charm_containerd_config(module, config_json, tls_dir), tls_dir


def test_charm_containerd_renders_a_config_containerd_runs_with(registry, tmp_path):
    # GIVEN charm-containerd's custom_registries from client-config (no relation here)
    out = run(registry.juju, registry.unit, "client-config", **{"mirror-for": "ghcr.io,docker.io"})
    parsed, rendered, tls_dir = charm_containerd_config(out.results["containerd"], tmp_path)
    assert [r.host for r in parsed] == [registry.netloc, "ghcr.io", "docker.io"]
    # WHEN a real containerd starts with the config its template renders
    with containerd.running(tmp_path / "containerd", rendered) as ctrd:
        plugins = ctrd.ctr("plugins", "ls").stdout
        dump = ctrd.dump()
        # AND the CA and credentials it was given are not used by a CRI pull: charm-containerd
        # keys them by URL, containerd looks them up by host[:port] (why the action says to
        # relate containerd, tested below)
        with pytest.raises(grpc.RpcError, match="certificate signed by unknown authority"):
            ctrd.cri_pull(PAUSE)
    assert "relate it (juju integrate docker-registry containerd)" in out.results["notes"]
    # THEN its CRI plugin loaded, with a mirror per host and the registry's auth and CA
    cri = [line for line in plugins.splitlines() if containerd.CRI.split(".")[-1] in line.split()]
    assert cri and cri[0].split()[-1] == "ok", plugins
    url = f"https://{registry.netloc}"
    for host in (registry.netloc, "ghcr.io", "docker.io"):
        assert f'[plugins."{containerd.CRI}".registry.mirrors."{host}"]' in dump, dump
    assert f'[plugins."{containerd.CRI}".registry.configs."{url}".auth]' in dump
    assert f'password = "{PASSWORD}"' in dump
    assert f'ca_file = "{tls_dir}/{registry.netloc}.ca"' in dump


@pytest.mark.parametrize(
    ("mirror_for", "why"),
    [("docker.io/library", "is not host[:port]"), ("{netloc}", "is this registry itself")],
)
def test_bad_mirror_for_fails_naming_it_and_changes_nothing(registry, helpers, mirror_for, why):
    juju, mirror_for = registry.juju, mirror_for.format(netloc=registry.netloc)
    hooks_before = helpers.hooks_ran(juju)
    out = run(juju, registry.unit, "client-config", **{"mirror-for": mirror_for})
    assert out.status == "failed"
    assert out.message.startswith(f"mirror-for: {mirror_for!r} {why}")
    assert helpers.hooks_ran(juju) == hooks_before
    helpers.wait_for_unit(juju, registry.unit, "active", f"Ready at {registry.netloc} (https).")


def test_the_password_is_in_the_output_and_nowhere_else(registry):
    """The action exists to hand the password out; the model's log never holds it."""
    log = registry.juju.cli("debug-log", "--replay", "--no-tail")
    assert log and PASSWORD not in log


@pytest.mark.local_only(CONTAINERD_FAKE)
def test_related_charm_containerd_pulls_mirrored_names_through_cri(registry, tmp_path):
    """charm-containerd related to docker-registry: the relation gives it this registry (its
    configure_registry handler keeps the entry in its kv, keyed by netloc, and puts the CA
    in the system's trust store: SSL_CERT_FILE here) and client-config's JSON adds only the
    mirror entries. A pull through the CRI plugin, as the kubelet's, of a ghcr.io name."""
    # GIVEN client-config's containerd JSON while containerd is related
    juju = registry.juju
    juju.deploy("fake:containerd", "containerd")
    juju.integrate(APP, "containerd")
    out = run(juju, registry.unit, "client-config", **{"mirror-for": "ghcr.io,docker.io"})
    config_json = out.results["containerd"]
    assert [e["host"] for e in json.loads(config_json)] == ["ghcr.io", "docker.io"]
    ca = tmp_path / "ca.crt"
    ca.write_text(base64.b64decode(json.loads(out.results["k8s"])[0]["ca_file"]).decode())

    def relation_entry(module):  # as charm-containerd's configure_registry keeps it
        entry = module.Registry(url=registry.netloc, username="admin", password=PASSWORD)
        entry.ca = str(ca)
        return entry

    _, rendered, _ = charm_containerd_config(config_json, tmp_path, relation_entry)
    # WHEN containerd, trusting the CA as the system does, pulls through CRI
    with containerd.running(tmp_path / "containerd", rendered, {"SSL_CERT_FILE": str(ca)}) as ctrd:
        pulled = ctrd.cri_pull(PAUSE)
        # THEN the image comes from this registry, digest kept
        assert pulled.startswith("sha256:")
        assert ctrd.digest(PAUSE, namespace="k8s.io") == registry.digests[PAUSE]
