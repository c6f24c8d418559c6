"""imagelists: the three list forms, release selection, templates, refusals that never echo a
file's content, the destination layout, collisions, source rewrites, bounded results and the
archive tool's planner."""

from __future__ import annotations

import json
import os
import socket

import pytest

from charms.layer.docker_registry import actions
from charms.layer.docker_registry.images import imagelists, plans, references
from charms.layer.docker_registry.images.imagelists import ListError, parse_list
from charms.layer.docker_registry.images.plans import Item

NETLOC = "10.0.0.1:5000"
DIGEST = "sha256:" + "a" * 64

# Shaped like Charmed Kubernetes' container-images.txt: one line per key, lines out of numeric
# order (1.35.10 before 1.35.9), a pre-release, templates, upstream names from every registry.
ROOT_LINES = [
    [
        "ci-static:",
        "docker.io/library/busybox:1.36",
        "docker.io/sonobuoy/sonobuoy:v0.57.1",
        "registry.k8s.io/conformance:v1.35.0",
    ],
    [
        "v1.34-static:",
        "docker.io/calico/node:v3.27.4",
        "registry.k8s.io/pause:3.9",
        "rocks.canonical.com/cdk/addon-resizer-{{ arch }}:1.8.9",
    ],
    [
        "v1.34.2-upstream:",
        "registry.k8s.io/coredns/coredns:v1.11.1",
        "quay.io/cephcsi/cephcsi:v3.8.1",
    ],
    [
        "v1.35-static:",
        "docker.io/calico/node:v3.27.4",
        "docker.io/calico/cni:v3.27.4",
        "registry.k8s.io/pause:3.10",
        "rocks.canonical.com/cdk/addon-resizer-{{ arch }}:1.8.9",
        "registry.k8s.io/pause:3.10",
    ],
    [
        "v1.35.0-rc.1-upstream:",
        "registry.k8s.io/coredns/coredns:v1.11.0",
        "quay.io/cephcsi/cephcsi:v3.9.0",
    ],
    [
        "v1.35.10-upstream:",
        "registry.k8s.io/coredns/coredns:v1.11.3",
        "nvcr.io/nvidia/k8s-device-plugin:v0.14.3",
        "docker.io/k8scloudprovider/cinder-csi-plugin:v1.35.0",
    ],
    [
        "v1.35.3-upstream:",
        "registry.k8s.io/coredns/coredns{{ multiarch_workaround }}:v1.11.1",
        "quay.io/cephcsi/cephcsi:v3.10.1",
        "",  # CK's lines sometimes have two spaces between images
        "nvcr.io/nvidia/k8s-device-plugin:v0.14.3",
        "registry.k8s.io/metrics-server/metrics-server-{{ arch }}:v0.7.0",
    ],
    [
        "v1.35.9-upstream:",
        "registry.k8s.io/coredns/coredns:v1.11.2",
        "quay.io/cephcsi/cephcsi:v3.10.2",
    ],
]
ROOT_FILE = "\n".join(" ".join(words) for words in ROOT_LINES) + "\n"

PER_RELEASE = """\
rocks.canonical.com/cdk/calico/node:v3.27.4
rocks.canonical.com/cdk/coredns/coredns:1.11.1
rocks.canonical.com/cdk/pause:3.9
rocks.canonical.com/cdk/addon-resizer-amd64:1.8.9
rocks.canonical.com/cdk/cephcsi/cephcsi:v3.8.1
"""

PLAIN = """\
# images our apps need
registry.k8s.io/pause:3.9

docker.io/library/nginx:1.25   # web
quay.io/prometheus/node-exporter:v1.7.0 registry.k8s.io/pause:3.9
"""


# ---------------------------------------------------------------- the three forms


def test_root_file_minor_release_takes_static_and_the_numerically_newest_patch():
    parsed = parse_list(ROOT_FILE, release="1.35", arches=("amd64",))
    assert parsed.form == "container-images.txt"
    assert parsed.lines == ("v1.35-static", "v1.35.10-upstream")  # 10 > 9 > 3, not text order
    assert parsed.images == [
        "docker.io/calico/node:v3.27.4",
        "docker.io/calico/cni:v3.27.4",
        "registry.k8s.io/pause:3.10",  # listed twice, kept once
        "rocks.canonical.com/cdk/addon-resizer-amd64:1.8.9",
        "registry.k8s.io/coredns/coredns:v1.11.3",
        "nvcr.io/nvidia/k8s-device-plugin:v0.14.3",
        "docker.io/k8scloudprovider/cinder-csi-plugin:v1.35.0",
    ]
    assert "busybox" not in " ".join(parsed.images)  # ci-static is CI's, not a cluster's


def test_root_file_exact_patch_takes_that_upstream_line_and_its_minors_static_line():
    parsed = parse_list(ROOT_FILE, release="v1.35.3", arches=("arm64",))
    assert parsed.lines == ("v1.35-static", "v1.35.3-upstream")
    assert "registry.k8s.io/coredns/coredns:v1.11.1" in parsed.images  # workaround dropped
    assert "registry.k8s.io/metrics-server/metrics-server-arm64:v0.7.0" in parsed.images
    assert "rocks.canonical.com/cdk/addon-resizer-arm64:1.8.9" in parsed.images
    assert not any("{{" in i or "amd64" in i for i in parsed.images)


def test_arch_all_expands_every_architecture():
    parsed = parse_list(ROOT_FILE, release="1.35.3", arches=references.ARCHES)
    resizers = [i for i in parsed.images if "addon-resizer" in i]
    assert resizers == [
        f"rocks.canonical.com/cdk/addon-resizer-{a}:1.8.9" for a in references.ARCHES
    ]


def test_a_patch_without_an_upstream_line_gets_the_static_images_and_says_so():
    parsed = parse_list(ROOT_FILE, release="1.35.4", arches=("amd64",))
    assert parsed.lines == ("v1.35-static",)
    assert len(parsed.images) == 4
    assert parsed.notes == [
        "no v1.35.4-upstream line: only the v1.35-static images "
        "(patches with upstream lines: 1.35.3, 1.35.0-rc.1, 1.35.9)"
    ]


def test_a_minor_with_only_pre_releases_uses_the_newest_pre_release():
    text = "v1.36.0-rc.0-upstream: registry.k8s.io/pause:3.10\n" + (
        "v1.36.0-rc.1-upstream: registry.k8s.io/pause:3.11\n"
        "v1.36.0-alpha.2-upstream: registry.k8s.io/pause:3.8\n"
    )
    parsed = parse_list(text, release="1.36")
    assert parsed.lines == ("v1.36.0-rc.1-upstream",)
    assert parsed.notes == [
        "no v1.36-static line: only the upstream images",
        "v1.36 has only pre-release lines: using 1.36.0-rc.1",
    ]


def test_root_file_without_release_lists_its_releases():
    with pytest.raises(ListError) as err:
        parse_list(ROOT_FILE)
    assert str(err.value) == (
        "this is Charmed Kubernetes' container-images.txt: give release= (a release in it, "
        "e.g. release=v1.35, or an exact patch); releases in it: 1.34, 1.35"
    )


@pytest.mark.parametrize(
    ("release", "closest"),
    [("1.37", "1.35, 1.34"), ("1.20.1", "1.34, 1.35"), ("2.0", "1.34, 1.35")],
)
def test_an_unknown_release_names_the_closest(release, closest):
    with pytest.raises(ListError, match=f"release {release} is not in the list; the closest: "):
        parse_list(ROOT_FILE, release=release)
    with pytest.raises(ListError) as err:
        parse_list(ROOT_FILE, release=release)
    assert str(err.value).endswith(closest)


@pytest.mark.parametrize("release", ["latest", "1", "1.35.x", "v1.35.3.1"])
def test_a_release_that_is_not_a_version_is_refused(release):
    with pytest.raises(ListError, match=r"release: a Kubernetes release such as 1\.35"):
        parse_list(ROOT_FILE, release=release)


def test_release_order_is_numeric_with_pre_releases_first():
    names = ["1.35.10", "1.35.9", "1.35.0", "1.35.0-rc.1", "1.35.0-rc.0", "1.35.0-alpha.2"]
    ordered = sorted((imagelists.parse_release(n) for n in names), key=imagelists.Release.order)
    assert [str(r) for r in ordered] == [
        "1.35.0-alpha.2",
        "1.35.0-rc.0",
        "1.35.0-rc.1",
        "1.35.0",
        "1.35.9",
        "1.35.10",
    ]


def test_per_release_file_is_a_list_of_rocks_names():
    parsed = parse_list(PER_RELEASE, require_host=True)
    assert parsed.form == "per-release list"
    assert len(parsed.images) == 5 and parsed.lines == ()


def test_plain_list_with_comments_blank_lines_and_duplicates():
    parsed = parse_list(PLAIN, require_host=True, release="1.35")
    assert parsed.form == "list"
    assert parsed.images == [
        "registry.k8s.io/pause:3.9",
        "docker.io/library/nginx:1.25",
        "quay.io/prometheus/node-exporter:v1.7.0",
    ]
    assert parsed.notes == ["release= applies to container-images.txt only; this file is not"]


def test_short_names_are_fine_in_the_images_parameter():
    assert parse_list("nginx:1 team/app:2", what="images", echo=True).images == [
        "nginx:1",
        "team/app:2",
    ]


# ---------------------------------------------------------------- refusals, never echoing


PRIVATE_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "-----END OPENSSH PRIVATE KEY-----\n"
)


@pytest.mark.parametrize(
    ("text", "secret", "message"),
    [
        (PRIVATE_KEY, "b3BlbnNzaC1rZXktdjEAAAAABG5v", "file line 1: not an image reference "),
        (
            "admin:$2y$05$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy\n",
            "N9qo8uLOickgx2ZMRZoMye",
            "file line 1: not an image reference (bad tag)",
        ),
        (
            "registry.k8s.io/pause:3.9\nadmin:$2y$04$Yq/lY2u5yQ1eWWw0uYh6xO.9i5pXq\n",
            "Yq/lY2u5yQ1eWWw0",
            "file line 2: not an image reference (bad host)",
        ),
        ("ubuntu:hunter2\n", "hunter2", "file line 1: not an image reference with its registry"),
        (
            "registry.k8s.io/pause:3.9\nuser: s3cr3tvalue\n",
            "s3cr3tvalue",
            "file line 2: expected images, not a `KEY:` line",
        ),
        ("password: s3cr3tvalue\n", "s3cr3tvalue", "file line 1: a key that is neither"),
        (
            "v1.35-static: registry.k8s.io/pause:3.9\nTOKEN=s3cr3tvalue\n",
            "s3cr3tvalue",
            "file line 2: expected a `KEY: image …` line",
        ),
        ("registry.k8s.io/pause:{{ token }}\n", "token", "file line 1: a {{ … }} template"),
        ("a\x00b s3cr3tvalue\n", "s3cr3tvalue", "file line 1: binary data"),
    ],
)
def test_a_file_that_is_not_an_image_list_is_refused_without_its_content(text, secret, message):
    with pytest.raises(ListError) as err:
        parse_list(text, release="1.35", require_host=True)
    assert str(err.value).startswith(message), str(err.value)
    assert secret not in str(err.value)


def test_the_images_parameter_is_named_in_its_refusal():
    with pytest.raises(ListError) as err:
        parse_list("ok:1\n\nBAD:1", what="images", echo=True)
    assert str(err.value) == (
        "images line 3: 'BAD:1' not an image reference (bad repository path)"
    )


def test_an_option_lookalike_never_passes_for_an_image():
    with pytest.raises(ListError, match="starts with '-'"):
        parse_list("--src-creds=x:y", what="images", echo=True)


# ---------------------------------------------------------------- reading list files


def test_read_list_file_reads_a_regular_file(tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text(PLAIN)
    assert imagelists.read_list_file(str(listing)) == PLAIN


def test_read_list_file_refusals(tmp_path):
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * 11)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    link = tmp_path / "link"
    link.symlink_to(big)
    binary = tmp_path / "bin"
    binary.write_bytes(b"\xff\xfe secret")
    sock_path = tmp_path / "sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(sock_path))
    cases = {
        "relative.txt": "file: must be an absolute path on the unit",
        str(big): "file: larger than 0 MiB",
        str(fifo): f"file: {fifo} is not a regular file",  # never opened: no hang
        str(tmp_path): f"file: {tmp_path} is not a regular file",
        str(link): f"file: {link} is not a regular file",
        "/dev/zero": "file: /dev/zero is not a regular file",
        str(sock_path): f"file: {sock_path} is not a regular file",
        str(binary): f"file: {binary} is not UTF-8 text, so not an image list",
        "/no/such/file": "file: cannot read /no/such/file: No such file or directory",
    }
    try:
        for path, message in cases.items():
            with pytest.raises(ListError) as err:
                imagelists.read_list_file(path, limit=10)
            assert str(err.value) == message
    finally:
        sock.close()


def test_read_list_file_refuses_what_swapped_in_after_the_check(tmp_path, monkeypatch):
    listing = tmp_path / "list.txt"
    listing.write_text("x")
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda path, flags: real_open("/dev/null", flags))
    with pytest.raises(ListError, match="is not a regular file"):
        imagelists.read_list_file(str(listing))


def test_read_list_file_that_grows_while_read(tmp_path, monkeypatch):
    listing = tmp_path / "list.txt"
    listing.write_text("abc")
    monkeypatch.setattr(os, "read", lambda fd, n: b"y" * n)
    with pytest.raises(ListError, match="larger than"):
        imagelists.read_list_file(str(listing), limit=2 * 1024 * 1024)


# ---------------------------------------------------------------- layout


@pytest.mark.parametrize(
    ("source", "default", "with_cdk"),
    [
        ("registry.k8s.io/pause:3.9", "pause:3.9", "cdk/pause:3.9"),
        ("registry.k8s.io/coredns/coredns:v1.11.1", "coredns/coredns:v1.11.1", None),
        ("docker.io/calico/node:v3.27.4", "calico/node:v3.27.4", "cdk/calico/node:v3.27.4"),
        ("docker.io/library/busybox:1.36", "busybox:1.36", "cdk/busybox:1.36"),
        ("busybox:1.36", "busybox:1.36", None),
        ("index.docker.io/library/nginx", "nginx:latest", None),
        ("quay.io/cephcsi/cephcsi:v3.8.1", "cephcsi/cephcsi:v3.8.1", None),
        ("quay.io/library/x:1", "library/x:1", None),  # library/ only dropped for Docker Hub
        ("nvcr.io/nvidia/k8s-device-plugin:v0.14.3", "nvidia/k8s-device-plugin:v0.14.3", None),
        ("k8s.gcr.io/pause:3.1", "pause:3.1", None),
        ("us.gcr.io/k8s-artifacts-prod/ingress-nginx/controller:v1.2", None, None),
        ("rocks.canonical.com/cdk/coredns/coredns:1.11.1", "coredns/coredns:1.11.1", None),
        ("rocks.canonical.com:443/cdk/pause:3.9", "pause:3.9", "cdk/pause:3.9"),
        ("rocks.canonical.com/other/x:1", "other/x:1", None),
        (f"registry.k8s.io/pause@{DIGEST}", f"pause@{DIGEST}", None),
        (f"registry.k8s.io/pause:3.9@{DIGEST}", "pause:3.9", None),
        ("127.0.0.1:5001/team/app:2", "team/app:2", None),
    ],
)
def test_destination_layout(source, default, with_cdk):
    ref = references.parse_reference(source)
    if default is None:
        default = source.split("/", 1)[1]
    assert str(references.destination(ref, NETLOC)) == f"{NETLOC}/{default}"
    if with_cdk:
        assert str(references.destination(ref, NETLOC, "cdk")) == f"{NETLOC}/{with_cdk}"


@pytest.mark.parametrize(
    ("source", "mirrored"),
    [
        # what containerd asks a registry that mirrors the image's host for
        ("ghcr.io/canonical/k8s-snap/pause:3.10", "canonical/k8s-snap/pause:3.10"),
        ("docker.io/library/busybox:1.36", "library/busybox:1.36"),
        ("busybox:1.36", "library/busybox:1.36"),
        ("index.docker.io/calico/node:v3", "calico/node:v3"),
        ("rocks.canonical.com/cdk/pause:3.9", "cdk/pause:3.9"),
        ("registry.k8s.io/pause:3.9", "pause:3.9"),
    ],
)
def test_mirror_layout_keeps_the_path_as_its_registry_has_it(source, mirrored):
    ref = references.parse_reference(source)
    assert str(references.destination(ref, NETLOC, layout="mirror")) == f"{NETLOC}/{mirrored}"


def test_layout_checks_and_the_hosts_to_mirror():
    assert references.check_layout("", "") == "image-registry"
    assert references.check_layout("Mirror", "") == "mirror"
    with pytest.raises(ListError, match=r"^layout: one of image-registry, mirror$"):
        references.check_layout("flat", "")
    with pytest.raises(ListError, match=r"^prefix: not with layout=mirror"):
        references.check_layout("mirror", "cdk")
    sources = ["busybox:1", "ghcr.io/a/b:1", "ghcr.io/c:2", "rocks.canonical.com:443/cdk/x:1"]
    assert references.mirrored_hosts(sources) == ["docker.io", "ghcr.io", "rocks.canonical.com"]


def test_image_registry_value_and_prefix_checks():
    assert references.image_registry(NETLOC) == NETLOC
    assert references.image_registry(NETLOC, "cdk") == f"{NETLOC}/cdk"
    assert references.check_prefix("/cdk/") == "cdk"
    assert references.check_prefix("") == ""
    for bad in ("CDK", "a b", "-x", "a//b"):
        with pytest.raises(ListError, match="prefix: a repository path"):
            references.check_prefix(bad)


def test_identity_spells_one_image_one_way():
    same = ["nginx", "nginx:latest", "docker.io/library/nginx", "index.docker.io/library/nginx"]
    assert {references.identity(references.parse_reference(s)) for s in same} == {
        "docker.io/library/nginx:latest"
    }
    rocks = ["rocks.canonical.com:443/cdk/pause:3.9", "ROCKS.canonical.com/cdk/pause:3.9"]
    assert len({references.identity(references.parse_reference(s)) for s in rocks}) == 1
    digest_only = references.parse_reference(f"pause@{DIGEST}")
    assert references.identity(digest_only) == f"docker.io/library/pause@{DIGEST}"


# ---------------------------------------------------------------- plans and collisions


def test_plan_drops_repeats_and_refuses_two_sources_for_one_destination():
    images = [
        "registry.k8s.io/pause:3.9",
        "rocks.canonical.com/cdk/pause:3.9",  # lands on <netloc>/pause:3.9 too
        "docker.io/calico/node:v3.27.4",
        "calico/node:v3.27.4",  # the same image spelled differently: a repeat
        "k8s.gcr.io/pause:3.9",
    ]
    items, repeats = plans.plan_mirror(images, netloc=NETLOC)
    assert repeats == 1
    assert [(i.source, i.status) for i in items] == [
        ("registry.k8s.io/pause:3.9", "refused"),
        ("rocks.canonical.com/cdk/pause:3.9", "refused"),
        ("docker.io/calico/node:v3.27.4", "planned"),
        ("k8s.gcr.io/pause:3.9", "refused"),
    ]
    assert items[0].reason == (
        f"rocks.canonical.com/cdk/pause:3.9, k8s.gcr.io/pause:3.9 also goes to {NETLOC}/pause:3.9"
    )
    # with cdk/ kept, the rocks name and the upstream name no longer meet
    items, _ = plans.plan_mirror(images[:2], netloc=NETLOC, prefix="cdk")
    assert {i.status for i in items} == {"refused"}


def test_many_collisions_are_summarised():
    images = [f"r{n}.example/pause:3.9" for n in range(6)]
    items, _ = plans.plan_mirror(images, netloc=NETLOC)
    assert items[0].reason.endswith(f"and 2 more also goes to {NETLOC}/pause:3.9")


def test_source_rewrite_reads_elsewhere_and_keeps_the_destination():
    rewrites = references.parse_rewrites(
        "rocks.canonical.com=127.0.0.1:5001, docker.io=hub-mirror.internal"
    )
    assert rewrites == {
        "rocks.canonical.com": "127.0.0.1:5001",
        "docker.io": "hub-mirror.internal",
    }
    items, _ = plans.plan_mirror(
        ["rocks.canonical.com:443/cdk/pause:3.9", "nginx:1", "quay.io/a/b:1"],
        netloc=NETLOC,
        rewrites=rewrites,
    )
    assert [(i.read, i.dest) for i in items] == [
        ("docker://127.0.0.1:5001/cdk/pause:3.9", f"{NETLOC}/pause:3.9"),
        ("docker://hub-mirror.internal/library/nginx:1", f"{NETLOC}/nginx:1"),
        ("docker://quay.io/a/b:1", f"{NETLOC}/a/b:1"),
    ]


@pytest.mark.parametrize("bad", ["rocks.canonical.com", "=x", "a=-b", "a=b c", "a=b=c"])
def test_bad_rewrites_are_refused(bad):
    with pytest.raises(ListError, match="source: give registry=host"):
        references.parse_rewrites(bad)


def test_item_lines_and_dicts():
    item = Item("a:1", f"{NETLOC}/a:1", status="copied", digest=DIGEST, expect=DIGEST)
    assert item.as_dict()["digest-kept"] is True
    assert item.line().startswith(f"copied a:1 -> {NETLOC}/a:1 {DIGEST}")
    item.status, item.reason = "present", "already there"
    assert item.line() == "skipped a:1: already there" and "digest-kept" not in item.as_dict()
    item.status, item.reason = "failed", "boom"
    assert item.line() == "FAILED a:1: boom" and not item.ok
    assert Item("a:1", "d").line() == "plan a:1 -> d"


# ---------------------------------------------------------------- digests a copy keeps


def _list(*platforms) -> bytes:
    return json.dumps(
        {
            "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
            "manifests": [
                {"digest": f"sha256:{n * 64}", "platform": p}
                for n, p in zip("123", platforms, strict=False)
            ],
        }
    ).encode()


def test_manifest_digest_of_a_single_image_and_of_a_list():
    import hashlib

    single = b'{"schemaVersion": 2, "config": {}}'
    assert plans.manifest_digest(single, arch="amd64", all_platforms=False) == (
        "sha256:" + hashlib.sha256(single).hexdigest()
    )
    raw = _list(
        {"os": "linux", "architecture": "amd64"},
        {"os": "linux", "architecture": "arm64", "variant": "v7"},
        {"os": "linux", "architecture": "arm64", "variant": "v8"},
    )
    assert plans.manifest_digest(raw, arch="amd64", all_platforms=False) == "sha256:" + "1" * 64
    assert plans.manifest_digest(raw, arch="arm64", all_platforms=False) == "sha256:" + "3" * 64
    assert plans.manifest_digest(raw, arch="s390x", all_platforms=False) == ""
    assert plans.manifest_digest(raw, all_platforms=True) == (
        "sha256:" + hashlib.sha256(raw).hexdigest()
    )
    assert plans.manifest_digest(b"not json", all_platforms=False).startswith("sha256:")
    other = json.dumps({"mediaType": "x", "manifests": []}).encode()
    assert plans.manifest_digest(other, all_platforms=False).startswith("sha256:")


# ---------------------------------------------------------------- architectures


def test_arch_defaults_to_the_units_machine():
    assert references.resolve_arch("", machine="x86_64") == ("amd64",)
    assert references.resolve_arch("", machine="aarch64") == ("arm64",)
    assert references.resolve_arch("ALL") == references.ARCHES
    assert references.resolve_arch("s390x") == ("s390x",)
    with pytest.raises(ListError, match="arch: this unit's machine type"):
        references.resolve_arch("", machine="riscv64")
    with pytest.raises(ListError, match="arch: one of amd64, arm64, ppc64le, s390x or all"):
        references.resolve_arch("x86")
    assert references.machine_arch() in ("", *references.ARCHES)


# ---------------------------------------------------------------- bounded results


def test_bounded_json_and_lines():
    rows = [{"n": n} for n in range(100)]
    text, shown = actions.bounded_json(rows, 100)
    assert len(text) <= 100 and json.loads(text) == rows[:shown] and 0 < shown < 100
    assert actions.bounded_json(rows, 10_000) == (json.dumps(rows), 100)
    lines = actions.bounded_lines([f"line {n}" for n in range(100)], 200)
    assert len(lines) <= 200 and lines.endswith("more (see the report file)")


# ---------------------------------------------------------------- the archive tool's planner


def test_main_prints_what_to_read_and_the_name_to_keep(tmp_path, capsys):
    listing = tmp_path / "container-images.txt"
    listing.write_text(ROOT_FILE)
    code = imagelists.main(
        [str(listing), "--release", "1.34", "--arch", "amd64", "--source", "docker.io=hub.local"]
    )
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    assert out.splitlines() == [
        "hub.local/calico/node:v3.27.4\tdocker.io/calico/node:v3.27.4",
        "registry.k8s.io/pause:3.9\tregistry.k8s.io/pause:3.9",
        "rocks.canonical.com/cdk/addon-resizer-amd64:1.8.9\t"
        "rocks.canonical.com/cdk/addon-resizer-amd64:1.8.9",
        "registry.k8s.io/coredns/coredns:v1.11.1\tregistry.k8s.io/coredns/coredns:v1.11.1",
        "quay.io/cephcsi/cephcsi:v3.8.1\tquay.io/cephcsi/cephcsi:v3.8.1",
    ]
    assert imagelists.main([str(listing)]) == 2
    assert "give release=" in capsys.readouterr().err
    assert imagelists.main([str(listing), "--release", "1.35.4"]) == 0
    assert "note: no v1.35.4-upstream line" in capsys.readouterr().err
