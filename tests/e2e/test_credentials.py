"""End to end: the registry's password from a Juju user secret (the credentials option).

As an operator does it: add the secret, deploy, grant it, point credentials at it. A real
containerd 1.6 pulls with what client-config hands out (configured by the k8s charm's own
code, so no credentials on ctr's command line). A new revision takes effect in the
secret-changed hook Juju fires, and no other: the new password pulls, the old one is refused.
Revoking the grant blocks at the next hook while the registry serves on with the last good
password. One deployment, its tests in file order like an operator's session.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import uuid
from pathlib import Path

import jubilant
import pytest

from tests.support import containerd, peers
from tests.support.images import make_test_image

APP = "registry-creds"
FIRST = "first-" + secrets.token_urlsafe(12)
SECOND = "second-" + secrets.token_urlsafe(12)


class Session:
    def __init__(self, juju: jubilant.Juju, unit: str, netloc: str, uri: str, digest: str):
        self.juju, self.unit, self.netloc, self.uri, self.digest = juju, unit, netloc, uri, digest
        self.hosts_dirs: dict[str, Path] = {}  # password -> the hosts.d client-config gave

    @property
    def ref(self) -> str:
        return f"{self.netloc}/creds/busybox:1"


def client_hosts_dir(session: Session, where: Path) -> Path:
    """What the k8s charm writes from client-config's JSON (its own code)."""
    out = session.juju.run(session.unit, "client-config")
    k8s = peers.k8s_containerd(where)
    k8s.ensure_registry_configs(k8s.parse_registries(out.results["k8s"]))
    return where / "hosts.d"


def pull(session: Session, hosts: Path, base: Path) -> subprocess.CompletedProcess:
    with containerd.running(base) as ctrd:
        done = ctrd.ctr("images", "pull", "--hosts-dir", str(hosts), session.ref)
        if done.returncode == 0:
            assert ctrd.digest(session.ref) == session.digest
        return done


@pytest.fixture(scope="module")
def session(juju, charm_dir, registry_image_tar, helpers, tmp_path_factory) -> Session:
    uri = juju.add_secret("registry-credentials", {"auth-basic-password": FIRST})
    unit = helpers.deploy_registry(juju, charm_dir, registry_image_tar, APP)
    netloc = f"{helpers.unit_address(juju, unit)}:5000"
    helpers.wait_for_unit(juju, unit, "active", f"Ready at {netloc} (http).")
    juju.grant_secret(uri, APP)
    juju.config(APP, {"credentials": uri})
    helpers.wait_for_unit(juju, unit, "active", f"Ready at {netloc} (http).")
    local = f"e2e-creds-{uuid.uuid4().hex[:6]}:1"
    make_test_image(local)
    try:  # the push action logs in with the password from the secret
        pushed = juju.run(unit, "push", {"image": local, "pull": False, "tag": "creds/busybox:1"})
    finally:
        subprocess.run(["docker", "rmi", local], capture_output=True)
    return Session(juju, unit, netloc, uri, pushed.results["digest"])


def test_containerd_pulls_with_the_password_from_the_secret(session, tmp_path):
    hosts = client_hosts_dir(session, tmp_path / "etc")
    session.hosts_dirs[FIRST] = hosts
    done = pull(session, hosts, tmp_path / "ctrd")
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_new_revision_takes_effect_in_secret_changed_alone(session, helpers, tmp_path):
    juju = session.juju
    before = len(helpers.hooks_ran(juju))
    # WHEN the operator puts a new password in the secret
    juju.update_secret(session.uri, {"auth-basic-password": SECOND})
    helpers.wait_for_unit(juju, session.unit, "active", f"Ready at {session.netloc} (http).")
    # THEN Juju's secret-changed was the one hook it took
    assert helpers.hooks_ran(juju)[before:] == [f"{session.unit}: secret-changed"]
    # AND containerd pulls with the new password; the old one is refused
    hosts = client_hosts_dir(session, tmp_path / "etc")
    session.hosts_dirs[SECOND] = hosts
    done = pull(session, hosts, tmp_path / "ctrd-new")
    assert done.returncode == 0, done.stderr[-2000:]
    old = pull(session, session.hosts_dirs[FIRST], tmp_path / "ctrd-old")
    assert old.returncode != 0 and "401" in old.stderr + old.stdout


def test_a_revoked_secret_blocks_and_the_registry_serves_on(session, helpers, tmp_path):
    juju = session.juju
    juju.cli("revoke-secret", session.uri, APP)
    helpers.fire_update_status(juju, session.unit)
    helpers.wait_for_unit(
        juju,
        session.unit,
        "blocked",
        "Invalid charm config: credentials: the secret is not granted to this application "
        "(juju grant-secret)",
    )
    done = pull(session, session.hosts_dirs[SECOND], tmp_path / "ctrd")
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_passwords_are_in_no_log_status_or_argv(session, helpers):
    """(client-config's output holds them: that action exists to hand them out)"""
    juju = session.juju
    haystacks = {
        "debug-log": juju.cli("debug-log", "--replay", "--no-tail"),
        "status": juju.cli("status", "--format", "json"),
    }
    if helpers.is_local(juju):  # the hook tools' argv and the status history
        root = Path(str(juju.model))
        records = [json.loads(line) for line in (root / "audit.jsonl").read_text().splitlines()]
        # (client-config hands the password out through action-set, whose argv holds it)
        handed_out = [
            r for r in records if (r["tool"], r["hook"]) == ("action-set", "client-config")
        ]
        assert handed_out and any(FIRST in json.dumps(r) for r in handed_out)
        haystacks["audit"] = json.dumps([r for r in records if r not in handed_out])
        haystacks["status-history"] = (root / "status-history.jsonl").read_text()
        assert "secret-get" in haystacks["audit"]  # the audit really records the reads
    for name, text in haystacks.items():
        assert text and FIRST not in text and SECOND not in text, f"a password in {name}"
