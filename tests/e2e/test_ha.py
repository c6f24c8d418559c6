"""End to end: two units on shared S3 (moto) behind real haproxy (the haproxy fake), both
active: a push spread over both, pulls while one is killed, failover, scale out/in, concurrent
pushes, metrics. The README's "High availability" section
shows these same steps as juju commands. Driven through jubilant; local model only: haproxy is
the local model's fake (its configuration is read on the test host) and S3 is moto, on the
test host's Docker bridge."""

from __future__ import annotations

import subprocess
import threading
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jubilant
import pytest

from tests.support.images import make_test_image
from tests.support.s3 import docker_bridge_gateway, moto_s3

APP = "docker-registry"
BUCKET = "registry-ha"

pytestmark = pytest.mark.local_only("haproxy is the local model's fake and S3 is moto")


def haproxy_cfg(juju: jubilant.Juju) -> str:
    """The configuration the haproxy fake runs (under the local model's directory)."""
    assert juju.model is not None
    return next((Path(juju.model) / "fakes").rglob("haproxy.cfg")).read_text()


def skopeo(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["skopeo", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def push(ref: str, dest: str, tmp: Path, s3=None) -> str:
    digest_file = tmp / f"{uuid.uuid4().hex}.digest"
    proc = skopeo(
        "copy",
        "--dest-tls-verify=false",
        "--digestfile",
        str(digest_file),
        f"docker-daemon:{ref}",
        f"docker://{dest}",
    )
    if proc.returncode != 0:
        raise AssertionError(f"push {ref} -> {dest}: {proc.stderr}\n{failure_logs(s3)}")
    return digest_file.read_text().strip()


def failure_logs(s3=None) -> str:
    """What the registries and moto said about errors (not the routine 404s of a push)."""
    logs = subprocess.run(
        "for c in $(docker ps -a --format '{{.Names}}' | grep '^registry-docker-registry-'); "
        "do echo == $c; docker logs $c 2>&1 | grep -E 'level=(error|warn|panic)' "
        "| grep -v 'blob unknown' | tail -8; done",
        shell=True,
        capture_output=True,
        text=True,
    ).stdout
    if s3 is not None:
        moto = [ln for ln in s3.log_tail(4000).splitlines() if '" 200 ' not in ln]
        moto = [ln for ln in moto if '" 204 ' not in ln and '" 404 ' not in ln]
        logs += "== moto_server\n" + "\n".join(moto[-40:])
    return logs


def pull_digest(src: str, tmp: Path) -> str:
    """Copy the image out (skopeo checks every blob's digest) and return its manifest digest."""
    target = tmp / uuid.uuid4().hex
    proc = skopeo("copy", "--src-tls-verify=false", f"docker://{src}", f"dir:{target}")
    assert proc.returncode == 0, f"{src}: {proc.stderr}"
    proc = skopeo("inspect", "--tls-verify=false", "--format", "{{.Digest}}", f"docker://{src}")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.fixture(scope="module")
def s3():
    with moto_s3(host=docker_bridge_gateway()) as endpoint:
        endpoint.create_bucket(BUCKET)
        yield endpoint


@pytest.fixture(scope="module")
def ha(juju, charm_dir, registry_image_tar, helpers, s3, tmp_path_factory):
    # juju deploy docker-registry -n 2 --config storage-s3-…=… (shared storage)
    model = juju
    model.deploy(
        charm_dir,
        APP,
        num_units=2,
        config={
            "registry-image": helpers.registry_image,
            **s3.charm_options(BUCKET),
            # SigV4, as the README recommends (v2, the default, is proven in
            # tests/integration/test_s3_registry.py)
            "storage-s3-skip-v4-auth": False,
            "prometheus-metrics": True,
        },
        resources={"registry-image": str(registry_image_tar)},
    )
    # juju deploy haproxy; juju integrate docker-registry haproxy:reverseproxy
    model.deploy("fake:haproxy", "haproxy", config={"enable_monitoring": True})
    mark = len(helpers.hooks_ran(model))
    model.integrate(f"{APP}:website", "haproxy:reverseproxy")
    # the relation's own hooks bring the proxy address: "proxied" without any other hook
    hooks = helpers.hooks_ran(model)[mark:]
    assert hooks and not [h for h in hooks if "update-status" in h], hooks
    proxy = f"{helpers.unit_address(model, 'haproxy/0')}:5000"
    for unit in (f"{APP}/0", f"{APP}/1"):
        helpers.wait_for_unit(model, unit, "active", f"Ready at {proxy} (http, proxied).")
    images = {}
    for n in range(3):
        ref = f"e2e-ha-{uuid.uuid4().hex[:6]}:{n}"
        make_test_image(ref, payload_bytes=200_000, seed=ref)
        images[ref] = f"ha/img{n}:v{n}"
    yield model, proxy, images, tmp_path_factory.mktemp("ha")
    for ref in images:
        subprocess.run(["docker", "rmi", ref], capture_output=True)


def test_haproxy_gets_one_backend_with_every_unit_active(ha, helpers):
    model, _, _, _ = ha
    # the leader's services: one backend, every unit on the shared storage active, balanced
    cfg = haproxy_cfg(model)
    assert "backend docker-registry" in cfg
    for n in (0, 1):
        server = f"server docker-registry-{n} {helpers.unit_address(model, f'{APP}/{n}')}:5000"
        assert server in cfg
        assert "backup" not in cfg.split(server, 1)[1].splitlines()[0]
    assert "balance roundrobin" in cfg and "option redispatch" in cfg


def registry_log(unit: str) -> str:
    return subprocess.run(
        ["docker", "logs", f"registry-{unit.replace('/', '-')}"],
        capture_output=True,
        text=True,
        check=True,
    ).stderr


def test_a_push_whose_requests_reach_both_units_completes(ha, s3):
    _, proxy, _, tmp = ha
    # GIVEN an image of a few layers, pushed through the proxy (requests balanced one by one)
    ref = f"e2e-ha-aa-{uuid.uuid4().hex[:6]}:1"
    make_test_image(ref, payload_bytes=300_000, seed=ref)
    try:
        digest = push(ref, f"{proxy}/aa/img:1", tmp, s3)
    finally:
        subprocess.run(["docker", "rmi", ref], capture_output=True)
    # THEN both units took part in the upload, and it pulls back whole, by digest
    for unit in (f"{APP}/0", f"{APP}/1"):
        assert "/v2/aa/img/blobs/uploads/" in registry_log(unit), unit
    assert pull_digest(f"{proxy}/aa/img:1", tmp) == digest


def test_pulls_keep_working_while_a_unit_is_killed(ha, helpers):
    model, proxy, _, _ = ha
    url = f"http://{proxy}/v2/aa/img/manifests/1"  # pushed above
    accept = {"Accept": "application/vnd.docker.distribution.manifest.v2+json"}

    def pull_manifest() -> bool:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=accept), timeout=5):
                return True
        except OSError:
            return False

    assert pull_manifest()
    # WHEN 4 clients pull in a loop and one unit's registry is killed in the middle
    results: list[bool] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            results.append(pull_manifest())

    def wait_for(count: int) -> None:
        while len(results) < count:
            time.sleep(0.01)

    with ThreadPoolExecutor(4) as pool:
        clients = [pool.submit(client) for _ in range(4)]
        wait_for(100)
        before = len(results)
        subprocess.run(["docker", "kill", f"registry-{APP}-1"], check=True, capture_output=True)
        after = len(results)
        wait_for(after + 200)
        stop.set()
        for done in clients:
            done.result()
    failed = results.count(False)
    print(f"pulls through the proxy while a unit was killed: {failed} of {len(results)} failed")
    # THEN requests fail only around the moment of the kill (those in flight on the killed
    # unit, and those haproxy sent it before its health check marked it down: counted above),
    # and the pulls since succeed on the other unit
    assert all(results[:before])
    assert all(results[-100:])
    # AND the next hook brings the killed registry back
    model.cli("update-status")
    helpers.wait_for_unit(model, f"{APP}/1", "active", f"Ready at {proxy} (http, proxied).")


def started_at(unit: str) -> tuple[str, int]:
    """When the unit's registry container started: (RFC 3339 seconds, nanoseconds), comparable
    (docker trims the fraction's trailing zeros, so the strings are not)."""
    name = f"registry-{unit.replace('/', '-')}"
    stamp = subprocess.run(
        ["docker", "inspect", "--format", "{{.State.StartedAt}}", name],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    seconds, _, fraction = stamp.rstrip("Z").partition(".")
    return seconds, int(fraction.ljust(9, "0")) if fraction else 0


def test_a_config_change_is_applied_one_unit_at_a_time_and_pulls_keep_working(ha, helpers):
    model, proxy, _, _ = ha
    units = [f"{APP}/0", f"{APP}/1"]
    url = f"http://{proxy}/v2/aa/img/manifests/1"  # pushed above
    accept = {"Accept": "application/vnd.docker.distribution.manifest.v2+json"}
    cfg = haproxy_cfg(model)
    assert "retry-on conn-failure empty-response response-timeout" in cfg
    before = {unit: started_at(unit) for unit in units}
    history = {unit: len(model.cli("show-status-log", unit).splitlines()) for unit in units}
    results: list[bool] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            try:
                request = urllib.request.Request(url, headers=accept)
                with urllib.request.urlopen(request, timeout=10):
                    results.append(True)
            except OSError:
                results.append(False)

    # WHEN the config changes (every unit's registry is recreated) while 2 clients pull
    with ThreadPoolExecutor(2) as pool:
        clients = [pool.submit(client) for _ in range(2)]
        # juju config docker-registry log-level=debug
        model.config(APP, {"log-level": "debug"})
        for unit in units:
            helpers.wait_for_unit(model, unit, "active", f"Ready at {proxy} (http, proxied).")
        stop.set()
        for done in clients:
            done.result()
    # THEN /0, whose config-changed ran first, waited for /1 (the highest number goes first)
    # and said so, then recreated its registry after /1's
    said = model.cli("show-status-log", units[0]).splitlines()[history[units[0]] :]
    waiting = [line for line in said if " waiting " in line]
    assert waiting and waiting[0].endswith(
        f"Waiting for {units[1]} to apply the new config first (rolling change); "
        "serving the previous config."
    ), said
    after = {unit: started_at(unit) for unit in units}
    assert all(after[unit] != before[unit] for unit in units)  # both recreated
    assert after[units[1]] < after[units[0]]
    # AND no pull through the proxy failed meanwhile
    print(f"pulls through the proxy during the rolling change: {results.count(False)} of "
          f"{len(results)} failed")  # fmt: skip
    assert results and all(results)


def test_stop_then_start_behind_the_proxy_says_proxied_again_without_a_hook(ha, helpers):
    model, proxy, _, _ = ha
    unit = f"{APP}/1"
    since = len(helpers.hooks_ran(model))
    model.run(unit, "stop", {})
    helpers.wait_for_unit(model, unit, "blocked", f"registry-{APP}-1 container is stopped.")
    model.run(unit, "start", {})  # the container was removed: re-run it
    # what the last hook said of the unit, once it answers where that hook found it
    helpers.wait_for_unit(model, unit, "active", f"Ready at {proxy} (http, proxied).")
    assert helpers.hooks_ran(model)[since:] == []


def test_failover_keeps_every_image(ha, s3):
    model, proxy, images, tmp = ha
    pushed = {dest: push(ref, f"{proxy}/{dest}", tmp, s3) for ref, dest in images.items()}
    # the primary's registry dies: haproxy sends everyone to the backup
    subprocess.run(["docker", "stop", f"registry-{APP}-0"], check=True, capture_output=True)
    deadline = time.time() + 20
    while True:
        try:
            pulled = {dest: pull_digest(f"{proxy}/{dest}", tmp) for dest in pushed}
            break
        except AssertionError:
            if time.time() > deadline:
                raise
            time.sleep(1)
    assert pulled == pushed
    # the next hook heals the unit (its container is not stopped by the operator)
    model.cli("update-status")  # (the local model's verb: Juju's timer fires it on every unit)
    assert (
        subprocess.run(
            ["docker", "inspect", "--format", "{{.State.Running}}", f"registry-{APP}-0"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        == "true"
    )


def test_scale_out_then_remove_the_old_primary(ha, helpers):
    model, proxy, images, tmp = ha
    digests = {dest: pull_digest(f"{proxy}/{dest}", tmp) for dest in images.values()}
    model.add_unit(APP)
    helpers.wait_for_unit(model, f"{APP}/2", "active", f"Ready at {proxy} (http, proxied).")
    model.remove_unit(f"{APP}/0")
    time.sleep(3)  # haproxy health checks settle on the new primary
    cfg = haproxy_cfg(model)
    assert "docker-registry-0 " not in cfg and "server docker-registry-2" in cfg
    assert {dest: pull_digest(f"{proxy}/{dest}", tmp) for dest in digests} == digests


def test_concurrent_pushes_through_the_proxy(ha, s3):
    _, proxy, _, tmp = ha
    refs = []
    for n in range(8):
        ref = f"e2e-ha-par-{uuid.uuid4().hex[:6]}:{n}"
        make_test_image(ref, payload_bytes=300_000, seed=ref)
        refs.append(ref)
    try:
        with ThreadPoolExecutor(8) as pool:
            pushed = dict(
                zip(
                    refs,
                    pool.map(lambda r: push(r, f"{proxy}/par/{r}", tmp, s3), refs),
                    strict=True,
                )
            )
        for ref, digest in pushed.items():
            assert pull_digest(f"{proxy}/par/{ref}", tmp) == digest
    finally:
        subprocess.run(["docker", "rmi", *refs], capture_output=True)


def test_metrics_are_scraped_on_the_debug_port(ha, helpers):
    model, _, _, _ = ha
    unit = f"{APP}/1"
    # (the local model's unit address stands for the unit's loopback, where the listener is)
    url = f"http://{helpers.unit_address(model, unit)}:5001/metrics"
    with urllib.request.urlopen(url, timeout=10) as r:
        body = r.read().decode()
    # the pushes above were counted: registry_http_requests_total{...} N with N > 0
    served = [
        float(line.rsplit(" ", 1)[1])
        for line in body.splitlines()
        if line.startswith("registry_http_requests_total{")
    ]
    assert served and sum(served) > 0, body[:2000]
    ports = model.status().get_units(APP)[unit].open_ports
    assert "5000/tcp" in ports and "5001/tcp" not in ports  # pprof is never opened


def test_s3_holds_the_data(ha, s3):
    keys = s3.keys(BUCKET)
    assert any("/docker/registry/v2/repositories/ha/img0/" in "/" + k for k in keys), keys[:5]


def eventually(check, timeout: float = 30):
    """``check()`` until it returns a true value (haproxy reloads, health checks settle)."""
    deadline = time.time() + timeout
    while True:
        result = check()
        if result or time.time() > deadline:
            return result
        time.sleep(1)


def test_tls_on_the_units_passes_through_the_proxy(ha, helpers, tmp_path):
    model, proxy, images, _ = ha
    # juju deploy easyrsa; juju integrate docker-registry easyrsa:client
    helpers.deploy_ca(model)
    model.integrate(f"{APP}:cert-provider", "easyrsa:client")
    units = [f"{APP}/1", f"{APP}/2"]
    for unit in units:
        helpers.wait_for_unit(model, unit, "active", f"Ready at {proxy} (https, proxied).")
    cfg = haproxy_cfg(model)
    assert "mode tcp" in cfg and "check-ssl verify none" in cfg
    # clients verify the units' certificate through haproxy: the proxy address is in its SANs
    cert_dir = tmp_path / "certs"
    cert_dir.mkdir()
    ca = helpers.unit_file(model, units[0], f"/etc/docker/certs.d/{proxy}/ca.crt")
    (cert_dir / "ca.crt").write_text(ca)
    ref = f"e2e-ha-tls-{uuid.uuid4().hex[:6]}:1"
    make_test_image(ref, payload_bytes=100_000, seed=ref)
    try:
        copy = ["copy", "--dest-cert-dir", str(cert_dir), f"docker-daemon:{ref}"]
        pushed = eventually(lambda: skopeo(*copy, f"docker://{proxy}/tls/img:1").returncode == 0)
    finally:
        subprocess.run(["docker", "rmi", ref], capture_output=True)
    assert pushed, failure_logs()

    def inspect(name: str) -> subprocess.CompletedProcess:
        return skopeo("inspect", "--cert-dir", str(cert_dir), f"docker://{proxy}/{name}")

    assert all(inspect(dest).returncode == 0 for dest in images.values())
    # juju config docker-registry tls-client-auth=true: haproxy has no client certificate, so
    # its health check becomes a TCP connect and the units stay in service
    model.config(APP, {"tls-client-auth": True})
    for unit in units:
        helpers.wait_for_unit(model, unit, "active", f"Ready at {proxy} (https, proxied).")
    cfg = haproxy_cfg(model)
    assert "httpchk" not in cfg and "check-ssl" not in cfg
    refused = eventually(lambda: "remote error: tls" in inspect("tls/img:1").stderr)
    assert refused  # without a client certificate the handshake is refused
    cert, key = helpers.easyrsa_client_pair_of(model, units[0])
    (cert_dir / "client.cert").write_text(cert)
    (cert_dir / "client.key").write_text(key)
    assert eventually(lambda: inspect("tls/img:1").returncode == 0), inspect("tls/img:1").stderr
