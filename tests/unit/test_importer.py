"""importer: what docker save archives, oci-archives and OCI layouts hold, how skopeo reads
each image, the mirror's layout for them, and an extraction that writes only an OCI layout's
regular files."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from charms.layer.docker_registry.images import importer
from charms.layer.docker_registry.images.importer import ArchiveError

NETLOC = "10.0.0.1:5000"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def docker_archive(path: Path, images: list[tuple[bytes, list[str]]]) -> list[str]:
    """A docker save archive: (config bytes, RepoTags) per image; returns config digests."""
    manifest, digests = [], []
    with tarfile.open(path, "w") as tar:
        for config, tags in images:
            hexdigest = hashlib.sha256(config).hexdigest()
            _add(tar, f"{hexdigest}.json", config)
            manifest.append({"Config": f"{hexdigest}.json", "RepoTags": tags, "Layers": []})
            digests.append(f"sha256:{hexdigest}")
        _add(tar, "manifest.json", json.dumps(manifest).encode())
    return digests


def oci_index(entries: list[tuple[str, dict, str]]) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "manifests": [
                {"mediaType": media, "digest": digest, "size": 1, "annotations": notes}
                for digest, notes, media in entries
            ],
        }
    ).encode()


def oci_layout(directory: Path, names: list[str]) -> list[str]:
    """An OCI layout with one (tiny) manifest per name; returns their digests."""
    (directory / "blobs" / "sha256").mkdir(parents=True)
    (directory / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    entries, digests = [], []
    for name in names:
        blob = json.dumps({"schemaVersion": 2, "name": name}).encode()
        digest = hashlib.sha256(blob).hexdigest()
        (directory / "blobs" / "sha256" / digest).write_bytes(blob)
        entries.append(
            (f"sha256:{digest}", {"org.opencontainers.image.ref.name": name}, OCI_MANIFEST)
        )
        digests.append(f"sha256:{digest}")
    (directory / "index.json").write_bytes(oci_index(entries))
    return digests


def oci_archive(path: Path, layout: Path, *, extra=()) -> None:
    with tarfile.open(path, "w") as tar:
        tar.add(layout, arcname=".")
        for member, data in extra:
            tar.addfile(member, io.BytesIO(data) if data is not None else None)


# ---------------------------------------------------------------- scanning


def test_a_docker_save_archive_with_several_images_and_tags(tmp_path):
    archive = tmp_path / "images.tar"
    configs = docker_archive(
        archive,
        [
            (b'{"a": 1}', ["registry.k8s.io/pause:3.9", "k8s.gcr.io/pause:3.9"]),
            (b'{"b": 2}', ["rocks.canonical.com/cdk/coredns/coredns:1.11.1"]),
            (b'{"c": 3}', []),
        ],
    )
    found = importer.scan(str(archive))
    assert found.archives == 1
    assert [(i.name, i.index, i.config) for i in found.images] == [
        ("registry.k8s.io/pause:3.9", 0, configs[0]),
        ("k8s.gcr.io/pause:3.9", 0, configs[0]),
        ("rocks.canonical.com/cdk/coredns/coredns:1.11.1", 1, configs[1]),
        ("", 2, configs[2]),
    ]
    items, notes, repeats = importer.plan(found.images, netloc=NETLOC)
    # both tags of image 0 land on <netloc>/pause:3.9: the same image, pushed once
    assert repeats == 1
    assert [(i.source, i.dest, i.read, i.extra) for i in items] == [
        ("registry.k8s.io/pause:3.9", f"{NETLOC}/pause:3.9", f"docker-archive:{archive}:@0", ()),
        (
            "rocks.canonical.com/cdk/coredns/coredns:1.11.1",
            f"{NETLOC}/coredns/coredns:1.11.1",
            f"docker-archive:{archive}:@1",
            (),
        ),
    ]
    assert items[0].expect == "" and items[0].config == configs[0]
    assert notes == [f"skipped an image in {archive} (image 2): the archive gives it no name"]


def test_an_oci_archive_and_an_oci_layout(tmp_path):
    layout = tmp_path / "layout"
    digests = oci_layout(layout, ["registry.k8s.io/pause:3.9", "quay.io/cephcsi/cephcsi:v3.8.1"])
    archive = tmp_path / "ck.tar"
    oci_archive(archive, layout)
    for path, kind in ((archive, "oci-archive"), (layout, "oci")):
        found = importer.scan(str(path))
        items, notes, _ = importer.plan(found.images, netloc=NETLOC, prefix="cdk")
        assert notes == []
        assert [(i.dest, i.read, i.expect, i.extra) for i in items] == [
            (
                f"{NETLOC}/cdk/pause:3.9",
                f"{kind}:{path}:registry.k8s.io/pause:3.9",
                digests[0],
                ("--preserve-digests",),
            ),
            (
                f"{NETLOC}/cdk/cephcsi/cephcsi:v3.8.1",
                f"{kind}:{path}:quay.io/cephcsi/cephcsi:v3.8.1",
                digests[1],
                ("--preserve-digests",),
            ),
        ]
    items, _, _ = importer.plan(importer.scan(str(archive)).images, netloc=NETLOC, preserve=False)
    assert items[0].extra == ()


def test_oci_names_an_index_and_names_skopeo_cannot_select(tmp_path):
    layout = tmp_path / "layout"
    layout.mkdir()
    (layout / "oci-layout").write_text("{}")
    index = "application/vnd.oci.image.index.v1+json"
    (layout / "index.json").write_bytes(
        oci_index(
            [
                (
                    "sha256:" + "1" * 64,
                    {
                        "io.containerd.image.name": "docker.io/calico/node:v3.27.4",
                        "org.opencontainers.image.ref.name": "v3.27.4",
                    },
                    index,
                ),
                ("sha256:" + "2" * 64, {"org.opencontainers.image.ref.name": "3.9"}, OCI_MANIFEST),
                ("sha256:" + "3" * 64, {"io.containerd.image.name": "a/b:1"}, OCI_MANIFEST),
                (
                    "sha256:" + "4" * 64,
                    {"org.opencontainers.image.ref.name": "Bad:x"},
                    OCI_MANIFEST,
                ),
                ("sha256:" + "5" * 64, {}, OCI_MANIFEST),
            ]
        )
    )
    items, notes, _ = importer.plan(importer.scan(str(layout)).images, netloc=NETLOC)
    assert [(i.source, i.dest, i.read, i.extra) for i in items] == [
        (
            "docker.io/calico/node:v3.27.4",
            f"{NETLOC}/calico/node:v3.27.4",
            f"oci:{layout}:v3.27.4",
            ("--preserve-digests", "--all"),
        )
    ]
    assert notes == [
        f"skipped 3.9 in {layout}: no tag or ref.name to select it by",
        f"skipped a/b:1 in {layout}: no tag or ref.name to select it by",
        f"skipped an image in {layout}: its name is not a reference (bad repository path)",
        f"skipped an image in {layout}: the archive gives it no name",
    ]


def test_a_directory_of_archives_and_layouts(tmp_path):
    docker_archive(tmp_path / "a.tar", [(b"{}", ["registry.k8s.io/pause:3.9"])])
    oci_layout(tmp_path / "layout", ["quay.io/x/y:1"])
    (tmp_path / "notes.txt").write_text("hunter2 secret")
    (tmp_path / "odd:name.tar").write_text("x")
    (tmp_path / "empty").mkdir()
    (tmp_path / "link.tar").symlink_to(tmp_path / "a.tar")
    found = importer.scan(str(tmp_path))
    assert found.archives == 2
    assert sorted(i.name for i in found.images) == ["quay.io/x/y:1", "registry.k8s.io/pause:3.9"]
    assert found.notes == [
        f"skipped {tmp_path}/empty: not an image archive or OCI layout",
        f"skipped {tmp_path}/link.tar: not an image archive or OCI layout",
        f"skipped {tmp_path}/notes.txt: not a docker save or OCI archive (not a tar file)",
        f"skipped {tmp_path}/odd:name.tar: its name has ':'",
    ]
    assert "hunter2" not in json.dumps(found.notes)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_text("user:hunter2\n"), "not a docker save or OCI archive (not a tar"),
        (lambda p: p.write_bytes(gzip.compress(b"x" * 600)), "gzip-compressed: decompress it"),
        (lambda p: _tar(p, [("etc/passwd", b"root:x:hunter2")]), "no manifest.json or oci-layout"),
        (lambda p: _tar(p, [("manifest.json", b"hunter2{")]), "its manifest.json is not valid"),
        (lambda p: _tar(p, [("manifest.json", b'{"a": 1}')]), "not a docker save manifest"),
        (lambda p: _tar(p, [("manifest.json", b"[1]")]), "not a docker save manifest"),
        (
            lambda p: _tar(p, [("manifest.json", b'[{"Config": "nope.json"}]')]),
            "image 0 has no config in the archive",
        ),
        (
            lambda p: _tar(p, [("oci-layout", b"{}"), ("index.json", b'{"x": "hunter2"}')]),
            "its index.json lists no manifests",
        ),
    ],
)
def test_files_that_are_not_image_archives_are_refused_without_their_content(
    tmp_path, make, message
):
    path = tmp_path / "file.tar"
    make(path)
    with pytest.raises(ArchiveError) as err:
        importer.scan(str(path))
    assert message in str(err.value)
    assert "hunter2" not in str(err.value)


def _tar(path: Path, files: list[tuple[str, bytes]]) -> None:
    with tarfile.open(path, "w") as tar:
        for name, data in files:
            _add(tar, name, data)


def test_paths_that_are_refused(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (tmp_path / "empty").mkdir()
    for path, message in (
        ("relative.tar", "path: must be an absolute path on the unit"),
        (str(tmp_path / "a:b.tar"), "path: must not contain ':'"),
        (str(tmp_path / "none.tar"), "path: cannot read"),
        (str(fifo), "is not a regular file or a directory"),
        (str(tmp_path / "empty"), "path: no image archive or OCI layout at"),
    ):
        with pytest.raises(ArchiveError, match=message):
            importer.scan(path)


def test_a_layout_whose_index_is_not_json(tmp_path):
    (tmp_path / "oci-layout").write_text("{}")
    (tmp_path / "index.json").write_text("hunter2")
    with pytest.raises(ArchiveError) as err:
        importer.scan(str(tmp_path))
    assert str(err.value) == f"{tmp_path}: index.json is not valid JSON"


def test_an_archive_that_is_a_device_is_not_opened(tmp_path, monkeypatch):
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda path, flags, *a: real_open("/dev/null", flags))
    archive = tmp_path / "a.tar"
    docker_archive(archive, [(b"{}", ["a.io/b:1"])])
    with pytest.raises(ArchiveError, match="not a regular file"):
        importer.scan(str(archive))


# ---------------------------------------------------------------- extraction


def test_extraction_writes_only_the_layouts_regular_files_and_is_removed_after(tmp_path):
    layout = tmp_path / "layout"
    digests = oci_layout(layout, ["registry.k8s.io/pause:3.9"])
    evil = tarfile.TarInfo("../evil")
    evil.size = 4
    link = tarfile.TarInfo("blobs/sha256/" + "f" * 64)
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    absolute = tarfile.TarInfo("/etc/cron.d/x")
    absolute.size = 4
    archive = tmp_path / "ck.tar"
    oci_archive(archive, layout, extra=[(evil, b"evil"), (link, None), (absolute, b"evil")])
    items, _, _ = importer.plan(importer.scan(str(archive)).images, netloc=NETLOC)
    assert importer.oci_archives(items) == [str(archive)]
    work = tmp_path / "work"
    with importer.extracted(importer.oci_archives(items), work) as layouts:
        importer.use_extracted(items, layouts)
        extracted = Path(layouts[str(archive)])
        assert items[0].read == f"oci:{extracted}:registry.k8s.io/pause:3.9"
        files = sorted(str(p.relative_to(extracted)) for p in extracted.rglob("*") if p.is_file())
        assert files == ["blobs/sha256/" + digests[0].split(":")[1], "index.json", "oci-layout"]
        assert not any(p.is_symlink() for p in extracted.rglob("*"))
    assert not (tmp_path / "evil").exists() and not (work / "evil").exists()
    assert not extracted.exists()


def test_extraction_checks_free_space_first(tmp_path, monkeypatch):
    layout = tmp_path / "layout"
    oci_layout(layout, ["a.io/b:1"])
    archive = tmp_path / "ck.tar"
    oci_archive(archive, layout)

    class Usage:
        free = 10

    monkeypatch.setattr(importer.shutil, "disk_usage", lambda path: Usage)
    with (
        pytest.raises(ArchiveError, match="extracting it needs 0 MiB, 0 MiB free under"),
        importer.extracted([str(archive)], tmp_path / "work"),
    ):
        pass
    assert list((tmp_path / "work").iterdir()) == []
