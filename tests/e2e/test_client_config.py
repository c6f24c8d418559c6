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
(``k8s list-images``), read from a local stand-in for ghcr.io and docker.io.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import subprocess
import uuid

import grpc
import pytest

from tests.support import containerd, peers
from tests.support.images import make_test_image

APP = "docker-registry"
UNIT = f"{APP}/0"
NETLOC = "127.0.0.2:5000"
PASSWORD = "cc-" + secrets.token_urlsafe(12)
PAUSE = "ghcr.io/canonical/k8s-snap/pause:3.10"
BUSYBOX = "docker.io/library/busybox:1.36"
LISTED = [PAUSE, BUSYBOX]  # as `k8s list-images` prints them: one full reference a line


def run(model, action, unit=UNIT, **params):
    return model.run_action(unit, action, params)


def path_of(image: str) -> str:
    return image.split("/", 1)[1]


@pytest.fixture(scope="module")
def upstream(upstream_registry):
    """A plain registry standing in for ghcr.io and docker.io: the images under their paths."""
    images = [(f"e2e-cc-{uuid.uuid4().hex[:6]}:{n}", path_of(i)) for n, i in enumerate(LISTED)]
    return upstream_registry("e2e-cc-up", images, loopback=True)


def upstream_digest(netloc: str, path: str) -> str:
    inspect = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", "--format", "{{.Digest}}",
         f"docker://{netloc}/{path}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return inspect.stdout.strip()


@pytest.fixture(scope="module")
def registry(
    model, charm_dir, registry_image_tar, helpers, easyrsa_charm, upstream, tmp_path_factory
):
    """https (the real easyrsa), basic auth, the listed images mirrored in the mirror layout."""
    model.deploy(
        str(charm_dir),
        APP,
        config={"registry-image": helpers.registry_image, "auth-basic-password": PASSWORD},
        resources={"registry-image": str(registry_image_tar)},
    )
    helpers.deploy_easyrsa(model, easyrsa_charm)
    model.integrate(f"{APP}:cert-provider", "easyrsa:client")
    helpers.wait_for_status(model, UNIT, "active", f"Ready at {NETLOC} (https).")
    listing = tmp_path_factory.mktemp("lists") / "k8s-images.txt"
    listing.write_text("".join(f"{image}\n" for image in LISTED))
    source = upstream.gateway_netloc
    mirrored = run(
        model,
        "mirror",
        file=str(listing),
        layout="mirror",
        source=f"ghcr.io={source},docker.io={source}",
        **{"src-tls-verify": False},
    )
    assert mirrored["status"] == "completed", mirrored
    assert mirrored["results"]["mirror-for"] == "docker.io,ghcr.io"
    return model


def k8s_hosts_dir(config_json: str, where) -> object:
    """What the k8s charm writes from its containerd-custom-registries option (its own code)."""
    k8s = peers.k8s_containerd(where)
    k8s.ensure_registry_configs(k8s.parse_registries(config_json))
    return where / "hosts.d"


def test_k8s_charm_config_pulls_by_netloc_and_by_upstream_names(registry, upstream, tmp_path):
    # GIVEN the k8s charm configured with client-config's JSON (mirror-for ghcr.io, docker.io)
    out = run(registry, "client-config", **{"mirror-for": "ghcr.io,docker.io"})
    assert out["status"] == "completed", out
    entries = json.loads(out["results"]["k8s"])
    assert [e["host"] for e in entries] == [NETLOC, "ghcr.io", "docker.io"]
    assert out["results"]["k8s-command"].startswith(
        "juju config k8s containerd-custom-registries="
    )
    hosts = k8s_hosts_dir(out["results"]["k8s"], tmp_path / "etc-containerd")
    with containerd.running(tmp_path / "containerd") as ctrd:
        # WHEN containerd pulls the images by the names the cluster uses
        for ref in [*LISTED, f"{NETLOC}/{path_of(PAUSE)}"]:
            pull = ctrd.ctr("images", "pull", "--hosts-dir", str(hosts), ref)
            # THEN each comes from this registry with the digest the upstream has
            assert pull.returncode == 0, pull.stderr[-2000:]
            assert ctrd.digest(ref) == upstream_digest(upstream.loopback_netloc, path_of(ref))
        # and without the configuration (no CA, no credentials) nothing is pulled
        bare = ctrd.ctr("images", "pull", f"{NETLOC}/{path_of(BUSYBOX)}")
        assert bare.returncode != 0


def test_plain_http_without_auth_as_canonicals_own_test_does(
    registry, charm_dir, registry_image_tar, helpers, tmp_path
):
    # GIVEN a second registry: no TLS, no auth, an image pushed from the unit's docker
    registry.deploy(
        str(charm_dir),
        "plain",
        config={"registry-image": helpers.registry_image},
        resources={"registry-image": str(registry_image_tar)},
    )
    address = registry.status()["applications"]["plain"]["units"]["plain/0"]["address"]
    netloc = f"{address}:5000"
    helpers.wait_for_status(registry, "plain/0", "active", f"Ready at {netloc} (http).")
    local = f"e2e-cc-plain-{uuid.uuid4().hex[:6]}:1"
    make_test_image(local)
    try:
        pushed = run(
            registry, "push", "plain/0", image=local, pull=False, tag=f"{netloc}/busybox:1.36"
        )
    finally:
        subprocess.run(["docker", "rmi", local], capture_output=True)
    assert pushed["status"] == "completed", pushed
    # WHEN client-config describes it
    out = run(registry, "client-config", "plain/0")
    assert out["status"] == "completed", out
    # THEN the JSON is what Canonical's test writes by hand, and containerd pulls with it
    assert json.loads(out["results"]["k8s"]) == [{"url": f"http://{netloc}", "host": netloc}]
    assert "notes" not in out["results"]
    hosts = k8s_hosts_dir(out["results"]["k8s"], tmp_path / "etc-containerd")
    with containerd.running(tmp_path / "containerd") as ctrd:
        ref = f"{netloc}/busybox:1.36"
        pull = ctrd.ctr("images", "pull", "--hosts-dir", str(hosts), ref)
        assert pull.returncode == 0, pull.stderr[-2000:]
        assert ctrd.digest(ref) == pushed["results"]["digest"]


def test_charm_containerd_renders_a_config_containerd_runs_with(registry, tmp_path):
    # GIVEN charm-containerd's custom_registries from client-config (no relation here)
    out = run(registry, "client-config", **{"mirror-for": "ghcr.io,docker.io"})
    config_json = out["results"]["containerd"]
    module = peers.charm_containerd(tmp_path / "unit-state.db")
    parsed = module.RegistryList.from_json(config_json).registries
    assert [r.host for r in parsed] == [NETLOC, "ghcr.io", "docker.io"]
    tls_dir = tmp_path / "etc-containerd"
    tls_dir.mkdir()
    # WHEN its template renders config.toml and a real containerd starts with it
    rendered = peers.charm_containerd_config(module, config_json, tls_dir)
    with containerd.running(tmp_path / "containerd", rendered) as ctrd:
        plugins = ctrd.ctr("plugins", "ls").stdout
        dump = ctrd.dump()
        # AND the CA and credentials it was given are not used by a CRI pull: charm-containerd
        # keys them by URL, containerd looks them up by host[:port] (why the action says to
        # relate containerd, tested below)
        with pytest.raises(grpc.RpcError, match="certificate signed by unknown authority"):
            ctrd.cri_pull(PAUSE)
    assert "relate it (juju integrate docker-registry containerd)" in out["results"]["notes"]
    # THEN its CRI plugin loaded, with a mirror per host and the registry's auth and CA
    cri = [line for line in plugins.splitlines() if containerd.CRI.split(".")[-1] in line.split()]
    assert cri and cri[0].split()[-1] == "ok", plugins
    url = f"https://{NETLOC}"
    for host in (NETLOC, "ghcr.io", "docker.io"):
        assert f'[plugins."{containerd.CRI}".registry.mirrors."{host}"]' in dump, dump
    assert f'[plugins."{containerd.CRI}".registry.configs."{url}".auth]' in dump
    assert f'password = "{PASSWORD}"' in dump
    assert f'ca_file = "{tls_dir}/{NETLOC}.ca"' in dump


@pytest.mark.parametrize(
    ("mirror_for", "message"),
    [
        ("docker.io/library", "mirror-for: 'docker.io/library' is not host[:port]"),
        (NETLOC, f"mirror-for: '{NETLOC}' is this registry itself"),
    ],
)
def test_bad_mirror_for_fails_naming_it_and_changes_nothing(
    registry, helpers, mirror_for, message
):
    since = len(helpers.hooks_run(registry))
    out = run(registry, "client-config", **{"mirror-for": mirror_for})
    assert out["status"] == "failed"
    assert out["message"].startswith(message)
    assert helpers.hooks_run(registry, since) == []
    helpers.wait_for_status(registry, UNIT, "active", f"Ready at {NETLOC} (https).")


def test_the_password_is_in_the_output_and_nowhere_else(registry):
    """The action exists to hand the password out; the unit's logs never hold it."""
    log = (registry.model.root / "debug.log").read_text()
    assert PASSWORD not in log


def registry_ca(model) -> str:
    """The CA the docker-registry relation handed the containerd fake (its tls_ca)."""
    return (model.model.root / "clients" / NETLOC / "ca.crt").read_text()


def test_related_charm_containerd_pulls_mirrored_names_through_cri(
    registry, upstream, helpers, tmp_path
):
    """charm-containerd related to docker-registry: the relation gives it this registry (its
    configure_registry handler keeps the entry in its kv, keyed by netloc, and puts the CA
    in the system's trust store: SSL_CERT_FILE here) and client-config's JSON adds only the
    mirror entries. A pull through the CRI plugin, as the kubelet's, of a ghcr.io name."""
    # GIVEN client-config's containerd JSON while containerd is related
    registry.deploy("fake:containerd", "containerd")
    registry.integrate(APP, "containerd")
    out = run(registry, "client-config", **{"mirror-for": "ghcr.io,docker.io"})
    config_json = out["results"]["containerd"]
    assert [e["host"] for e in json.loads(config_json)] == ["ghcr.io", "docker.io"]
    # AND charm-containerd's kv entry for the relation, as configure_registry writes it
    module = peers.charm_containerd(tmp_path / "unit-state.db")
    ca = tmp_path / "ca.crt"
    ca.write_text(registry_ca(registry))
    entry = module.Registry(url=NETLOC, username="admin", password=PASSWORD)
    entry.ca = str(ca)
    module.DB.set("registry", dataclasses.asdict(entry))
    tls_dir = tmp_path / "etc-containerd"
    tls_dir.mkdir()
    rendered = peers.charm_containerd_config(module, config_json, tls_dir)
    # WHEN containerd, trusting the CA as the system does, pulls through CRI
    with containerd.running(tmp_path / "containerd", rendered, {"SSL_CERT_FILE": str(ca)}) as ctrd:
        pulled = ctrd.cri_pull(PAUSE)
        # THEN the image comes from this registry, digest kept
        assert pulled.startswith("sha256:")
        digest = ctrd.digest(PAUSE, namespace="k8s.io")
        assert digest == upstream_digest(upstream.loopback_netloc, path_of(PAUSE))
