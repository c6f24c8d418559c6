"""transfer: reference parsing, default tags, image lists, credentials handed to skopeo in files
(never argv), push and mirror with a fake skopeo on PATH and docker faked."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from charms.layer.docker_registry.images import plans, references, transfer
from charms.layer.docker_registry.images.plans import Item
from charms.layer.docker_registry.images.transfer import Target, TransferError

SECRET = "tr4nsfer-secret"
NETLOC = "10.0.0.1:5000"
DIGEST = "sha256:" + "c" * 64


@pytest.mark.parametrize(
    ("image", "tag"),
    [
        ("nginx", f"{NETLOC}/nginx:latest"),
        ("nginx:1.25", f"{NETLOC}/nginx:1.25"),
        ("docker.io/library/nginx:1", f"{NETLOC}/nginx:1"),
        ("library/nginx:1", f"{NETLOC}/nginx:1"),
        ("docker.io/calico/node:v3", f"{NETLOC}/calico/node:v3"),
        ("registry.k8s.io/pause:3.9", f"{NETLOC}/pause:3.9"),
        ("rocks.canonical.com:443/cdk/coredns/coredns:1.11", f"{NETLOC}/cdk/coredns/coredns:1.11"),
        ("localhost/team/app:2", f"{NETLOC}/team/app:2"),
        ("127.0.0.1:5001/team/app", f"{NETLOC}/team/app:latest"),
        ("quay.io/library/x:1", f"{NETLOC}/library/x:1"),  # library/ only dropped for Hub
        (f"nginx@{DIGEST}", f"{NETLOC}/nginx@{DIGEST}"),
        (f"nginx:1@{DIGEST}", f"{NETLOC}/nginx:1"),
        ("team/app:2", f"{NETLOC}/team/app:2"),  # "team" is no host: no dot, colon, localhost
    ],
)
def test_default_tag_keeps_the_path_without_the_source_host(image, tag):
    assert transfer.default_tag(image, NETLOC) == tag


@pytest.mark.parametrize(
    "image",
    ["", "UPPER/case", "a b", "nginx:", "nginx:-bad", "nginx@sha256:xyz", "x//y", "bad host!/x"],
)
def test_bad_references_are_refused(image):
    with pytest.raises(TransferError):
        references.parse_reference(image)


def test_parse_reference_parts():
    ref = references.parse_reference("[fd00::1]:5000/a/b:1")
    assert (ref.host, ref.path, ref.tag) == ("[fd00::1]:5000", "a/b", "1")
    assert str(ref) == "[fd00::1]:5000/a/b:1"


def test_a_bad_reference_says_why_without_repeating_itself():
    with pytest.raises(references.BadReference) as err:
        references.parse_reference("user:pa$$word")
    assert err.value.why == "bad tag" and isinstance(err.value, TransferError)


def test_skopeo_auth_writes_private_files_and_removes_them(tmp_path):
    ca = tmp_path / "ca.crt"
    ca.write_text("CA PEM")
    target = Target(NETLOC, True, str(ca), "admin", SECRET)
    with transfer.skopeo_auth(target) as auth:
        authfile = Path(auth.authfile)
        assert stat.S_IMODE(authfile.stat().st_mode) == 0o600
        assert stat.S_IMODE(authfile.parent.stat().st_mode) == 0o700
        token = json.loads(authfile.read_text())["auths"][NETLOC]["auth"]
        assert base64.b64decode(token).decode() == f"admin:{SECRET}"
        assert (Path(auth.cert_dir) / "ca.crt").read_text() == "CA PEM"
        assert auth.dest_args() == [
            "--dest-authfile",
            auth.authfile,
            "--dest-cert-dir",
            auth.cert_dir,
        ]
    assert not authfile.parent.exists()


def test_skopeo_auth_puts_the_client_certificate_in_the_cert_dir(tmp_path):
    # containers/image reads *.crt as CAs and a *.cert / *.key pair as the client certificate
    (tmp_path / "ca.crt").write_text("CA PEM")
    (tmp_path / "c.cert").write_text("CLIENT CERT")
    (tmp_path / "c.key").write_text("CLIENT KEY")
    pair = (str(tmp_path / "c.cert"), str(tmp_path / "c.key"))
    target = Target(NETLOC, True, str(tmp_path / "ca.crt"), client_pair=pair)
    with transfer.skopeo_auth(target) as auth:
        cert_dir = Path(auth.cert_dir)
        assert sorted(p.name for p in cert_dir.iterdir()) == [
            "ca.crt",
            "client.cert",
            "client.key",
        ]
        assert (cert_dir / "client.key").read_text() == "CLIENT KEY"
        assert auth.dest_args() == ["--dest-cert-dir", auth.cert_dir]
    assert not cert_dir.exists()


def test_skopeo_auth_for_plain_http_without_credentials():
    with transfer.skopeo_auth(Target(NETLOC, tls=False)) as auth:
        assert auth.dest_args() == ["--dest-tls-verify=false"]
        assert auth.src_args() == ["--src-tls-verify=false"]


@pytest.fixture
def skopeo(tmp_path, monkeypatch):
    """A fake skopeo recording its argv; fails for sources containing 'missing'."""
    log = tmp_path / "skopeo.log"
    script = tmp_path / "skopeo"
    script.write_text(
        f"""#!/usr/bin/env python3
import json, sys
argv = sys.argv[1:]
with open({str(log)!r}, "a") as f:
    f.write(json.dumps(argv) + "\\n")
if any("authfile" in a for a in argv):
    path = argv[argv.index([a for a in argv if a.endswith("authfile")][0]) + 1]
    assert "auths" in json.load(open(path))
if "missing" in argv[-2]:
    sys.stderr.write('time="x" level=fatal msg="manifest unknown {SECRET}"\\n')
    sys.exit(1)
open(argv[argv.index("--digestfile") + 1], "w").write("{DIGEST}")
"""
    )
    script.chmod(0o755)
    monkeypatch.setattr(transfer, "SKOPEO", str(script))

    def calls():
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    return calls


def test_push_pulls_then_copies_from_the_daemon(skopeo, monkeypatch):
    docker_calls = []
    monkeypatch.setattr(transfer.container, "pull", lambda ref: docker_calls.append(("pull", ref)))
    monkeypatch.setattr(transfer.container, "image_id", lambda ref: "sha256:" + "1" * 64)
    result = transfer.push(
        "rocks.example:443/cdk/pause:3.9", Target(NETLOC, True, "", "admin", SECRET)
    )
    assert result == transfer.PushResult(f"{NETLOC}/cdk/pause:3.9", DIGEST)
    assert docker_calls == [("pull", "rocks.example:443/cdk/pause:3.9")]
    (argv,) = skopeo()
    assert argv[-2:] == [
        "docker-daemon:rocks.example:443/cdk/pause:3.9",
        f"docker://{NETLOC}/cdk/pause:3.9",
    ]
    assert "--dest-authfile" in argv
    assert SECRET not in json.dumps(argv)


def test_push_of_a_digest_uses_the_image_id(skopeo, monkeypatch):
    monkeypatch.setattr(transfer.container, "image_id", lambda ref: "sha256:" + "1" * 64)
    transfer.push(f"nginx@{DIGEST}", Target(NETLOC, tls=False), pull=False)
    assert skopeo()[0][-2:] == [
        f"docker-daemon:sha256:{'1' * 64}",
        f"docker://{NETLOC}/nginx@{DIGEST}",
    ]


def test_push_without_the_local_image_says_so(skopeo, monkeypatch):
    monkeypatch.setattr(transfer.container, "image_id", lambda ref: None)
    with pytest.raises(TransferError, match="not in the local docker images"):
        transfer.push("nginx:1", Target(NETLOC), pull=False)
    assert skopeo() == []


@pytest.mark.parametrize(
    ("tag", "expected"),
    [("team/app", f"{NETLOC}/team/app:latest"), (f"{NETLOC}/x:2", f"{NETLOC}/x:2")],
)
def test_push_with_an_explicit_tag(skopeo, monkeypatch, tag, expected):
    monkeypatch.setattr(transfer.container, "image_id", lambda ref: "id")
    assert transfer.push("nginx:1", Target(NETLOC), tag=tag, pull=False).tag == expected


def test_push_to_another_registry_is_refused(skopeo):
    with pytest.raises(TransferError, match="must start with this registry's address"):
        transfer.push("nginx:1", Target(NETLOC), tag="other:5000/x:1", pull=False)


def _planned(images: list[str], extra: tuple[str, ...] = ()) -> list[Item]:
    items, _ = plans.plan_mirror(images, netloc=NETLOC, extra=extra)
    return items


def test_copies_continue_after_a_failure_and_hide_the_secret(skopeo):
    # GIVEN three planned images, the second one missing upstream
    lines: list[str] = []
    images = ["registry.k8s.io/pause:3.9", "quay.io/missing/x:1", "docker.io/library/nginx:1"]
    # WHEN they are copied two at a time with basic auth
    items = transfer.run_copies(
        _planned(images),
        Target(NETLOC, True, "", "admin", SECRET),
        concurrency=2,
        src_args=["--src-tls-verify=false"],
        log=lines.append,
    )
    # THEN the failure stops nothing, says why, and the password is nowhere
    assert [i.status for i in items] == ["copied", "failed", "copied"]
    assert [i.dest for i in items] == [
        f"{NETLOC}/pause:3.9",
        f"{NETLOC}/missing/x:1",
        f"{NETLOC}/nginx:1",
    ]
    assert items[1].reason == "manifest unknown ***"
    assert len(lines) == 3
    assert SECRET not in json.dumps([lines, [i.line() for i in items], skopeo()])
    assert all("--src-tls-verify=false" in argv for argv in skopeo())
    assert sorted(argv[-2] for argv in skopeo()) == sorted(f"docker://{i}" for i in images)


def test_copies_of_all_platforms_pass_all(skopeo):
    transfer.run_copies(_planned(["a/b:1"], extra=("--all",)), Target(NETLOC))
    assert "--all" in skopeo()[0]


def test_missing_skopeo_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(transfer, "SKOPEO", "/nonexistent/skopeo")
    (item,) = transfer.run_copies(_planned(["a/b:1"]), Target(NETLOC))
    assert item.reason == "skopeo is not installed"


# ---------------------------------------------------------------- proxies


def test_proxy_env_uses_the_models_proxy_and_bypasses_it_for_this_registry():
    env = transfer.proxy_env(
        NETLOC,
        {
            "PATH": "/usr/bin",
            "JUJU_CHARM_HTTPS_PROXY": "http://user:pw@squid:3128",
            "JUJU_CHARM_HTTP_PROXY": "http://squid:3128",
            "JUJU_CHARM_NO_PROXY": "127.0.0.1,localhost, .internal",
            "no_proxy": "localhost",
        },
    )
    assert env["PATH"] == "/usr/bin"
    assert env["HTTPS_PROXY"] == env["https_proxy"] == "http://user:pw@squid:3128"
    assert env["HTTP_PROXY"] == env["http_proxy"] == "http://squid:3128"
    assert (
        env["NO_PROXY"] == env["no_proxy"] == (f"127.0.0.1,localhost,.internal,10.0.0.1,{NETLOC}")
    )


@pytest.mark.parametrize(
    ("netloc", "no_proxy"),
    [
        ("[fd00::1]:5000", "fd00::1,[fd00::1]:5000"),
        ("[fd00::1]", "fd00::1,[fd00::1]"),
        ("registry.example", "registry.example"),
    ],
)
def test_proxy_env_without_model_proxies_still_bypasses_this_registry(netloc, no_proxy):
    env = transfer.proxy_env(netloc, {"HTTPS_PROXY": "http://site:3128"})
    assert env["HTTPS_PROXY"] == "http://site:3128"  # the machine's own setting stays
    assert env["NO_PROXY"] == no_proxy


def test_errors_never_show_a_proxys_credentials():
    assert transfer._scrub("proxyconnect http://user:pw@squid:3128: refused", Target(NETLOC)) == (
        "proxyconnect http://***@squid:3128: refused"
    )


# ---------------------------------------------------------------- the copy runner


def test_run_copies_skips_what_is_there_and_counts(fake_skopeo):
    from charms.layer.docker_registry.images.plans import Item

    items = [
        Item("a:1", f"{NETLOC}/a:1", read="docker://a:1"),
        Item("b:1", f"{NETLOC}/b:1", read="docker://b:1", extra=("--all",)),
        Item("missing:1", f"{NETLOC}/missing:1", read="docker://missing:1"),
        Item("c:1", f"{NETLOC}/c:1", read="docker://c:1", status="refused"),
    ]
    lines: list[str] = []

    def present(item):
        if item.source == "b:1":
            raise TransferError("cannot tell")  # then it is copied
        return "there" if item.source == "a:1" else ""

    transfer.run_copies(
        items, Target(NETLOC, tls=False), concurrency=1, present=present, log=lines.append
    )
    assert [i.status for i in items] == ["present", "copied", "failed", "refused"]
    assert items[1].digest == "sha256:" + "c" * 64
    assert items[2].reason == "reading manifest: manifest unknown"
    assert lines == [
        "[1/3] skipped a:1: there",
        f"[2/3] copied b:1 -> {NETLOC}/b:1 sha256:{'c' * 64} ({items[1].seconds:.1f}s)",
        "[3/3] FAILED missing:1: reading manifest: manifest unknown",
    ]
    assert "--all" in fake_skopeo.copies()[0]


def test_run_copies_with_nothing_to_do():
    assert transfer.run_copies([], Target(NETLOC)) == []


def test_inspect_raw_returns_the_bytes(fake_skopeo):
    fake_skopeo.manifests = {"docker://a:1": '{"x": 1}'}
    assert transfer.skopeo_inspect_raw("docker://a:1", target=Target(NETLOC)) == b'{"x": 1}'
    assert (
        transfer.skopeo_inspect_raw("docker://a:1", target=Target(NETLOC), tls_verify=False)
        == b'{"x": 1}'
    )
    assert "--tls-verify=false" in fake_skopeo.calls()[-1]["argv"]
    with pytest.raises(TransferError, match="manifest unknown"):
        transfer.skopeo_inspect_raw("docker://b:1", target=Target(NETLOC))


def test_nothing_starting_with_a_dash_reaches_skopeo(fake_skopeo):
    with pytest.raises(TransferError, match="starts with '-'"):
        transfer.skopeo_inspect_raw("--help", target=Target(NETLOC))
    with (
        transfer.skopeo_auth(Target(NETLOC)) as auth,
        pytest.raises(TransferError, match="starts with '-'"),
    ):
        transfer.skopeo_copy("-x", "docker://y", auth=auth, target=Target(NETLOC))
    assert fake_skopeo.calls() == []


def test_preserve_digests_support_is_asked_once(fake_skopeo, monkeypatch):
    assert transfer.supports_preserve_digests() is True
    assert transfer.supports_preserve_digests() is True
    assert len(fake_skopeo.calls()) == 1
    monkeypatch.setattr(transfer, "_PRESERVE", {})
    monkeypatch.setattr(transfer, "SKOPEO", "/nonexistent/skopeo")
    assert transfer.supports_preserve_digests() is False


def test_a_copy_that_hangs_times_out(fake_skopeo, monkeypatch):
    import subprocess

    def slow(*args, **kwargs):
        raise subprocess.TimeoutExpired(args[0], kwargs["timeout"])

    monkeypatch.setattr(transfer.subprocess, "run", slow)
    with pytest.raises(TransferError, match="inspect docker://a:1 timed out after 300s"):
        transfer.skopeo_inspect_raw("docker://a:1", target=Target(NETLOC))
