"""transfer: reference parsing, default tags, image lists, credentials handed to skopeo in files
(never argv), push and mirror with a fake skopeo on PATH and docker faked."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from charms.layer.docker_registry import transfer
from charms.layer.docker_registry.transfer import Target, TransferError

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
        transfer.parse_reference(image)


def test_parse_reference_parts():
    ref = transfer.parse_reference("[fd00::1]:5000/a/b:1")
    assert (ref.host, ref.path, ref.tag) == ("[fd00::1]:5000", "a/b", "1")
    assert str(ref) == "[fd00::1]:5000/a/b:1"


def test_parse_image_list_skips_comments_blanks_and_duplicates():
    text = "# header\n\nnginx:1  busybox:2 # two\n  nginx:1\n#gone:1\nregistry.k8s.io/pause:3.9\n"
    assert transfer.parse_image_list(text) == ["nginx:1", "busybox:2", "registry.k8s.io/pause:3.9"]


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


def test_mirror_continues_after_a_failure_and_hides_the_secret(skopeo):
    lines: list[str] = []
    images = ["registry.k8s.io/pause:3.9", "quay.io/missing/x:1", "docker.io/library/nginx:1"]
    results = transfer.mirror(
        images,
        Target(NETLOC, True, "", "admin", SECRET),
        concurrency=2,
        src_tls_verify=False,
        log=lines.append,
    )
    assert [r.ok for r in results] == [True, False, True]
    assert [r.target for r in results] == [
        f"{NETLOC}/pause:3.9",
        f"{NETLOC}/missing/x:1",
        f"{NETLOC}/nginx:1",
    ]
    assert results[1].error == "manifest unknown ***"
    assert len(lines) == 3
    assert SECRET not in json.dumps([lines, [r.line() for r in results], skopeo()])
    assert all("--src-tls-verify=false" in argv for argv in skopeo())
    assert sorted(argv[-2] for argv in skopeo()) == sorted(f"docker://{i}" for i in images)


def test_mirror_all_platforms_passes_all(skopeo):
    transfer.mirror(["a/b:1"], Target(NETLOC), all_platforms=True)
    assert "--all" in skopeo()[0]


def test_missing_skopeo_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(transfer, "SKOPEO", "/nonexistent/skopeo")
    (result,) = transfer.mirror(["a/b:1"], Target(NETLOC))
    assert result.error == "skopeo is not installed"
