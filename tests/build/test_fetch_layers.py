"""scripts/fetch-layers.sh against local bare git repositories (LAYER_GIT_BASE), and its table
against the layer cache the builds use."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.build.conftest import ROOT

SCRIPT = ROOT / "scripts" / "fetch-layers.sh"
TABLE = ROOT / "scripts" / "layers.tsv"
LAYER_CACHE = Path(os.environ.get("LAYER_CACHE", ROOT.parent / "shared" / "layers"))
GIT_ENV = {
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}


def git(*args, cwd=None) -> str:
    proc = subprocess.run(
        ["git", "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false", *args],
        cwd=cwd,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout.strip()


class Remote:
    """A bare repository at BASE/<owner>/<repo> with a work clone to commit from."""

    def __init__(self, base: Path, repo: str):
        self.bare = base / repo
        self.bare.parent.mkdir(parents=True, exist_ok=True)
        git("init", "-q", "--bare", str(self.bare))
        self.work = base.parent / "work" / repo
        self.work.parent.mkdir(parents=True, exist_ok=True)
        git("clone", "-q", str(self.bare), str(self.work))

    def commit(self, files: dict[str, str], push: bool = True) -> str:
        for name, text in files.items():
            path = self.work / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        git("add", "-A", cwd=self.work)
        git("commit", "-q", "-m", f"change {sorted(files)}", cwd=self.work)
        if push:
            git("push", "-q", "origin", "HEAD:main", cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work)


def run(dest: Path, table: Path, base: Path | str) -> subprocess.CompletedProcess:
    env = {**os.environ, **GIT_ENV, "LAYERS_TSV": str(table), "LAYER_GIT_BASE": str(base)}
    return subprocess.run(
        ["bash", str(SCRIPT), str(dest)], env=env, capture_output=True, text=True, check=False
    )


def write_table(path: Path, rows) -> Path:
    path.write_text("# kind\tname\trepo\tcommit\n" + "".join("\t".join(r) + "\n" for r in rows))
    return path


@pytest.fixture
def remotes(tmp_path):
    base = tmp_path / "git"
    basic = Remote(base, "charmed-kubernetes/layer-basic")
    first = basic.commit({"layer.yaml": "v: 1\n", "lib/x.py": "one\n"})
    second = basic.commit({"layer.yaml": "v: 2\n"})
    http = Remote(base, "charmed-kubernetes/interface-http")
    http_head = http.commit({"interface.yaml": "name: http\n", "provides.py": "\n"})
    easyrsa = Remote(base, "charmed-kubernetes/layer-easyrsa")
    easyrsa_head = easyrsa.commit({"metadata.yaml": "name: easyrsa\n"})
    return {
        "base": base,
        "basic": (basic, first, second),
        "rows": [
            ("layer", "basic", "charmed-kubernetes/layer-basic", first),
            ("interface", "http", "charmed-kubernetes/interface-http", http_head),
            ("charm", "easyrsa", "charmed-kubernetes/layer-easyrsa", easyrsa_head),
        ],
    }


def head(path: Path) -> str:
    return git("rev-parse", "HEAD", cwd=path)


def test_fills_the_cache_at_the_pinned_commits_and_is_idempotent(tmp_path, remotes):
    dest = tmp_path / "cache"
    table = write_table(tmp_path / "layers.tsv", remotes["rows"])
    basic, first, second = remotes["basic"]
    proc = run(dest, table, remotes["base"])
    assert proc.returncode == 0, proc.stderr
    # an older commit than the branch head: checked out exactly
    assert head(dest / "layers/basic") == first
    assert (dest / "layers/basic/layer.yaml").read_text() == "v: 1\n"
    assert (dest / "interfaces/http/interface.yaml").is_file()
    assert (dest / "charms/easyrsa/metadata.yaml").is_file()
    assert "3 checkouts" in proc.stdout
    assert not list(dest.glob("*/.fetch-*"))

    again = run(dest, table, remotes["base"])
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("(up to date)") == 3, again.stdout

    # a new pin: moved to it; a commit pushed after the clone is fetched
    third = basic.commit({"layer.yaml": "v: 3\n"})
    rows = [("layer", "basic", "charmed-kubernetes/layer-basic", third), *remotes["rows"][1:]]
    moved = run(dest, write_table(table, rows), remotes["base"])
    assert moved.returncode == 0, moved.stderr
    assert f"{first[:12]} -> {third[:12]}" in moved.stdout
    assert head(dest / "layers/basic") == third
    assert (dest / "layers/basic/layer.yaml").read_text() == "v: 3\n"
    assert second  # (the commit in between is never checked out)


def test_a_layer_that_is_a_folder_of_its_repository(tmp_path, remotes):
    # GIVEN an interface layer kept in src/ of its repository (as charm-interface-cos-agent)
    cos = Remote(remotes["base"], "canonical/charm-interface-cos-agent")
    commit = cos.commit({"src/interface.yaml": "name: cos_agent\n", "README.md": "hi\n"})
    row = ("interface", "cos_agent", "canonical/charm-interface-cos-agent", commit, "src")
    table = write_table(tmp_path / "t.tsv", [row])
    # WHEN the cache is filled, twice
    first = run(tmp_path / "cache", table, remotes["base"])
    again = run(tmp_path / "cache", table, remotes["base"])
    # THEN interfaces/cos_agent is that folder, at the pinned commit, and stays so
    assert first.returncode == 0, first.stderr
    assert again.returncode == 0 and "(up to date)" in again.stdout, again.stderr
    layer = tmp_path / "cache/interfaces/cos_agent"
    assert (layer / "interface.yaml").read_text() == "name: cos_agent\n"
    assert not (layer / "README.md").exists()
    assert head(tmp_path / "cache/checkouts/cos_agent") == commit


def test_never_touches_a_checkout_with_local_changes_or_a_plain_directory(tmp_path, remotes):
    dest = tmp_path / "cache"
    table = write_table(tmp_path / "layers.tsv", remotes["rows"])
    assert run(dest, table, remotes["base"]).returncode == 0
    _, first, second = remotes["basic"]
    (dest / "layers/basic/layer.yaml").write_text("edited\n")
    rows = [("layer", "basic", "charmed-kubernetes/layer-basic", second), *remotes["rows"][1:]]
    proc = run(dest, write_table(table, rows), remotes["base"])
    assert proc.returncode != 0
    assert "has local changes" in proc.stderr
    assert (dest / "layers/basic/layer.yaml").read_text() == "edited\n"
    assert head(dest / "layers/basic") == first

    other = tmp_path / "other"
    (other / "interfaces/http").mkdir(parents=True)
    proc = run(other, table, remotes["base"])
    assert proc.returncode != 0
    assert "is not a git checkout" in proc.stderr


def test_offline_or_unknown_commit_is_a_clear_error_and_leaves_nothing(tmp_path, remotes):
    dest = tmp_path / "cache"
    table = write_table(tmp_path / "layers.tsv", remotes["rows"])
    proc = run(dest, table, "file:///nonexistent/git-mirror")
    assert proc.returncode != 0
    assert "cannot fetch" in proc.stderr and "LAYER_GIT_BASE" in proc.stderr, proc.stderr
    assert not (dest / "layers/basic").exists()
    assert not list(dest.glob("*/.fetch-*"))

    missing = "f" * 40
    rows = [("layer", "basic", "charmed-kubernetes/layer-basic", missing)]
    proc = run(dest, write_table(table, rows), remotes["base"])
    assert proc.returncode != 0
    assert f"has no commit {missing}" in proc.stderr
    assert not (dest / "layers/basic").exists()
    assert not list(dest.glob("*/.fetch-*"))


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (("layer", "basic", "charmed-kubernetes/layer-basic"), "want 4 or 5 tab-separated"),
        (("layer", "basic", "charmed-kubernetes/layer-basic", "a" * 40, "../x"), "bad folder"),
        (("layer", "basic", "charmed-kubernetes/layer-basic", "abc123"), "not a full commit id"),
        (("thing", "basic", "charmed-kubernetes/layer-basic", "a" * 40), "is not layer"),
    ],
)
def test_bad_table_rows_are_refused(tmp_path, remotes, row, message):
    proc = run(tmp_path / "cache", write_table(tmp_path / "t.tsv", [row]), remotes["base"])
    assert proc.returncode != 0
    assert message in proc.stderr


def test_an_interface_without_interface_yaml_is_refused(tmp_path, remotes):
    bogus = Remote(remotes["base"], "someone/not-an-interface")
    commit = bogus.commit({"README.md": "hi\n"})
    table = write_table(
        tmp_path / "t.tsv", [("interface", "x", "someone/not-an-interface", commit)]
    )
    proc = run(tmp_path / "cache", table, remotes["base"])
    assert proc.returncode != 0
    assert "no interface.yaml" in proc.stderr


# --- the real table -----------------------------------------------------------------------------
def real_rows() -> list[list[str]]:
    rows = []
    for line in TABLE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            rows.append(line.split("\t"))
    return rows


def test_the_table_pins_what_the_layer_cache_holds():
    provenance = LAYER_CACHE / "PROVENANCE.tsv"
    if not provenance.is_file():
        pytest.skip(f"no layer cache with a PROVENANCE.tsv at {LAYER_CACHE}")
    pinned = {}
    for line in provenance.read_text().splitlines()[1:]:
        name, source, commit = line.split("\t")[:3]
        if not name.startswith("resources/"):
            # "github.com/owner/repo (layer = its src/)": the words after it are a note
            pinned[name] = (source.split()[0].removeprefix("github.com/"), commit.split()[0])
    rows = real_rows()
    # the cache may hold more (layers for work not built yet); what the table pins is in it,
    # at the same commit, and the table has every layer the charm includes
    assert {r[1] for r in rows} <= set(pinned)
    includes = yaml.safe_load((ROOT / "layer.yaml").read_text())["includes"]
    assert {i.split(":", 1)[1] for i in includes} <= {r[1] for r in rows}
    sub = {"layer": "layers", "interface": "interfaces", "charm": "charms"}
    for kind, name, repo, commit, *_folder in rows:
        assert (repo, commit) == pinned[name], name
        assert (LAYER_CACHE / sub[kind] / name).is_dir(), f"{kind} {name} not in {sub[kind]}/"


def test_a_cache_it_fills_builds_the_charm(tmp_path):
    """The layer cache in git form (one commit per layer, in local bare repositories with the
    table's repository names), fetched by the script, then the charm built from it."""
    if not (LAYER_CACHE / "layers/basic").is_dir():
        pytest.skip(f"no layer cache at {LAYER_CACHE}")
    base = tmp_path / "git"
    rows = []
    sub = {"layer": "layers", "interface": "interfaces", "charm": "charms"}
    for kind, name, repo, _commit, *folder in real_rows():
        remote = Remote(base, repo)
        work = remote.work.joinpath(*folder)  # a layer that is a folder of its repository
        shutil.copytree(LAYER_CACHE / sub[kind] / name, work, dirs_exist_ok=True)
        for path in [remote.work, *remote.work.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)  # the cache is read-only
        rows.append((kind, name, repo, remote.commit({}), *folder))
    dest = tmp_path / "cache"
    proc = run(dest, write_table(tmp_path / "layers.tsv", rows), base)
    assert proc.returncode == 0, proc.stderr
    env = dict(os.environ, LAYER_CACHE=str(dest), WHEELHOUSE="host")
    if not (ROOT / ".venv/bin/charm-build").exists():
        env["VENV"] = sys.prefix
    build = subprocess.run(
        ["bash", str(ROOT / "scripts/build-charm.sh"), str(tmp_path / "out")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr
    assert f"layers from {dest}" in build.stdout
    assert (tmp_path / "out/docker-registry/hooks/install").exists()
