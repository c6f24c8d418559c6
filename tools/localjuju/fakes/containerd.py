"""containerd/docker-like client of the docker-registry interface (requires `docker-registry`).

Its units run the `requirer` test charm (tests/charms/requirer): the upstream
interface:docker-registry requires code reads what the registry published
(registry_netloc, registry_url, basic_user, basic_password, tls_ca, the `ready` flag). From
that reading this fake configures a real docker client under <model>/clients/<netloc>/:
    ca.crt          the registry CA (certs.d layout: use as /etc/docker/certs.d/<netloc>/ca.crt)
    registry.json   what was received (password omitted)
    docker/         a `docker --config` dir, logged in with the password on stdin when auth is on
    containerd/     the same for a real containerd client, as charm-containerd configures
                    containerd (see `containerd_hosts`)
The docker daemon itself only trusts CAs from its own certs.d; set LOCALJUJU_DOCKER_CERTS_D
(e.g. /etc/docker/certs.d) to let the fake install ca.crt there too (removed again on departure).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from pathlib import Path

from .base import Fake, FakeContext


class ContainerdClientFake(Fake):
    ENDPOINTS = {"docker-registry": ("requires", "docker-registry")}
    CHARM = "requirer"

    def client_dir(self, netloc: str) -> Path:
        return self.model.root / "clients" / netloc.replace("/", "_")

    def on_install(self, ctx: FakeContext) -> None:
        ctx.set_status("waiting", "Waiting for a registry.")

    def on_relation(self, ctx: FakeContext) -> None:
        reading = ctx.reading.get("docker-registry") or {}
        if reading.get("ready"):
            fields = ("registry_netloc", "registry_url", "basic_user", "basic_password", "tls_ca")
            self.configure(ctx, {k: reading.get(k) for k in fields})
        elif ctx.kind in ("departed", "broken"):
            self.unconfigure(ctx)

    def configure(self, ctx: FakeContext, data: dict) -> None:
        netloc = data["registry_netloc"]
        d = self.client_dir(netloc)
        d.mkdir(parents=True, exist_ok=True)
        applied = self.load("applied.json", {})
        key = json.dumps(data, sort_keys=True)
        if applied.get(ctx.unit, {}).get("key") == key:
            return  # nothing changed: no re-login
        ca = data.get("tls_ca")
        certs_d = os.environ.get("LOCALJUJU_DOCKER_CERTS_D")
        installed = []
        if ca:
            (d / "ca.crt").write_text(ca)
            if certs_d:
                target = Path(certs_d) / netloc
                target.mkdir(parents=True, exist_ok=True)
                (target / "ca.crt").write_text(ca)
                installed.append(str(target / "ca.crt"))
        elif (d / "ca.crt").exists():
            (d / "ca.crt").unlink()
        public = {k: v for k, v in data.items() if k != "basic_password"}
        (d / "registry.json").write_text(json.dumps(public, indent=1, sort_keys=True))
        user, password = data.get("basic_user"), data.get("basic_password")
        self.containerd_hosts(d, netloc, bool(ca), user, password)
        message = f"Configured for {netloc}."
        status = "active"
        if user and password:
            proc = subprocess.run(
                [
                    "docker",
                    "--config",
                    str(d / "docker"),
                    "login",
                    netloc,
                    "-u",
                    user,
                    "--password-stdin",
                ],
                input=password,
                capture_output=True,
                text=True,
            )
            if proc.returncode == 0:
                message = f"Logged in to {netloc}."
            else:
                status, message = "blocked", f"docker login {netloc} failed"
                ctx.log(f"docker login {netloc} failed: {proc.stderr.strip()}", "WARNING")
        applied[ctx.unit] = {"key": key, "netloc": netloc, "installed": installed}
        self.save("applied.json", applied)
        ctx.set_status(status, message)

    def containerd_hosts(self, d: Path, netloc: str, ca: bool, user, password) -> None:
        """What charm-containerd makes of the relation (its CRI registry config: endpoint
        https://<netloc>, the CA, basic auth), in containerd's hosts format for a real
        containerd client: ``containerd/hosts/<netloc>/hosts.toml`` (``ctr --hosts-dir``) and
        ``containerd/credentials`` (user:password, 0600; ctr takes it only as ``--user``)."""
        base = d / "containerd"
        hosts = base / "hosts" / netloc
        hosts.mkdir(parents=True, exist_ok=True)
        lines = [
            f'server = "https://{netloc}"',  # charm-containerd's endpoint has no scheme: https
            "",
            f'[host."https://{netloc}"]',
            '  capabilities = ["pull", "resolve"]',
        ]
        if ca:
            lines.append(f'  ca = "{d / "ca.crt"}"')
        (hosts / "hosts.toml").write_text("\n".join(lines) + "\n")
        credentials = base / "credentials"
        credentials.unlink(missing_ok=True)
        if user and password:
            fd = os.open(credentials, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(f"{user}:{password}")

    def unconfigure(self, ctx: FakeContext) -> None:
        applied = self.load("applied.json", {})
        mine = applied.pop(ctx.unit, None)
        self.save("applied.json", applied)
        if mine:
            for path in mine.get("installed", []):
                Path(path).unlink(missing_ok=True)
                with contextlib.suppress(OSError):
                    Path(path).parent.rmdir()
            if not any(a.get("netloc") == mine["netloc"] for a in applied.values()):
                shutil.rmtree(self.client_dir(mine["netloc"]), ignore_errors=True)
        ctx.set_status("waiting", "Waiting for a registry.")
