import json
import os
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
for extra in (ROOT / "lib", ROOT):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from tests.support.config import charm_defaults  # noqa: E402
from tests.support.hostguard import host_dockerd_out_of_reach  # noqa: E402, F401 - autouse


@pytest.fixture(scope="session")
def defaults() -> dict:
    """config.yaml's defaults, as Juju hands them to the charm (unset options are absent)."""
    return charm_defaults()


@pytest.fixture
def config(defaults) -> dict:
    return dict(defaults)


@pytest.fixture(autouse=True)
def registry_lock_in_tmp(monkeypatch, tmp_path):
    """The registry lock file (an absolute host path outside a sandbox) stays in tmp_path."""
    from charms.layer.docker_registry.host import lock

    monkeypatch.setattr(lock, "LOCK_FILE", str(tmp_path / "registry.lock"))


FAKE_DIGEST = "sha256:" + "c" * 64


@pytest.fixture
def fake_skopeo(tmp_path, monkeypatch):
    """A fake skopeo on transfer.SKOPEO recording argv and the proxy environment.

    copy: writes ``digests[source]`` (default FAKE_DIGEST) to --digestfile; a source with
    "missing" fails. inspect --raw: prints ``manifests[source]``. copy --help: lists
    --preserve-digests unless ``old`` is set. Configure through the returned object."""
    from charms.layer.docker_registry.images import transfer

    state = tmp_path / "skopeo-state.json"
    log = tmp_path / "skopeo.log"
    script = tmp_path / "skopeo"
    script.write_text(
        f"""#!/usr/bin/env python3
import json, os, sys
argv = sys.argv[1:]
state = json.load(open({str(state)!r}))
env = {{k: os.environ.get(k, "") for k in ("HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "no_proxy")}}
with open({str(log)!r}, "a") as f:
    f.write(json.dumps({{"argv": argv, "env": env}}) + "\\n")
if argv[-1] == "--help":
    print("--preserve-digests" if not state["old"] else "--all")
    sys.exit(0)
if "inspect" in argv:
    raw = state["manifests"].get(argv[-1])
    if raw is None:
        sys.stderr.write('time="x" level=fatal msg="manifest unknown"\\n')
        sys.exit(1)
    sys.stdout.write(raw)
    sys.exit(0)
source = argv[-2]
if "missing" in source:
    sys.stderr.write('time="x" level=fatal msg="reading manifest: manifest unknown"\\n')
    sys.exit(1)
digest = state["digests"].get(source, {FAKE_DIGEST!r})
open(argv[argv.index("--digestfile") + 1], "w").write(digest)
"""
    )
    script.chmod(0o755)
    monkeypatch.setattr(transfer, "SKOPEO", str(script))
    monkeypatch.setattr(transfer, "_PRESERVE", {})

    class Fake:
        digests: dict = {}
        manifests: dict = {}
        old = False

        def save(self):
            # atomic: skopeo processes running at the same time read it
            tmp = state.with_suffix(f".{os.getpid()}.{threading.get_ident()}")
            tmp.write_text(
                json.dumps({"digests": self.digests, "manifests": self.manifests, "old": self.old})
            )
            os.replace(tmp, state)

        def calls(self) -> list[dict]:
            self.save()
            if not log.exists():
                return []
            return [json.loads(line) for line in log.read_text().splitlines()]

        def copies(self) -> list[list[str]]:
            return [
                c["argv"]
                for c in self.calls()
                if "copy" in c["argv"][:4] and c["argv"][-1] != "--help"
            ]

    fake = Fake()
    fake.digests, fake.manifests = {}, {}
    fake.save()
    original = transfer.subprocess.run

    def run(*args, **kwargs):
        fake.save()  # what the test configured reaches the script
        return original(*args, **kwargs)

    monkeypatch.setattr(transfer.subprocess, "run", run)
    return fake
