"""The unit's own Docker engine trusts its registry (so `docker push <netloc>/…` works here).

TLS: the CA goes to /etc/docker/certs.d/<netloc>/ca.crt, which dockerd reads per connection;
with mutual TLS the unit's client certificate goes next to it (client.cert, client.key 0600),
where dockerd, skopeo and the charm's actions find it.
No TLS: <netloc> goes into daemon.json's insecure-registries, applied with a reload (SIGHUP),
never a restart, and only when the file really changed.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
from pathlib import Path

from charms.layer.docker_registry.config import reader
from charms.layer.docker_registry.host import files, paths


def _daemon_json(host: paths.Host) -> Path:
    return host.path(paths.DOCKER_DAEMON_JSON)


def _set_insecure(host: paths.Host, add: str = "", remove: str = "") -> bool:
    """Edit daemon.json's insecure-registries, keeping every other setting; True if changed."""
    path = _daemon_json(host)
    try:
        config = json.loads(path.read_text()) if path.exists() else {}
    except ValueError:
        return False  # never overwrite an operator's file we cannot parse
    if not isinstance(config, dict):
        return False
    registries = [r for r in config.get("insecure-registries", []) if r != remove]
    if add and add not in registries and valid_netloc(add):
        registries.append(add)
    if registries == config.get("insecure-registries", []):
        return False
    if registries:
        config["insecure-registries"] = registries
    else:
        config.pop("insecure-registries", None)
    return files.write_if_changed(path, json.dumps(config, indent=2) + "\n", 0o644)


def reload_daemon() -> bool:
    """Ask dockerd to re-read daemon.json (SIGHUP): running containers are not affected.
    False when no way of asking worked."""
    for argv in (["systemctl", "reload", "docker"], ["pkill", "-HUP", "-x", "dockerd"]):
        found = shutil.which(argv[0])
        if found and subprocess.run(argv, capture_output=True, timeout=60).returncode == 0:
            return True
    return False


def valid_netloc(netloc: str) -> bool:
    """What dockerd accepts in insecure-registries: host (name or IP) and an optional port."""
    host, _, port = netloc.rpartition(":") if not netloc.endswith("]") else (netloc, "", "")
    if not host or "]" in port:
        host, port = netloc, ""
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        return False
    return reader.is_host(host)


def _forget_certs_dir(host: paths.Host, netloc: str) -> None:
    """Remove what the charm wrote for ``netloc`` in certs.d, and the directory only when
    nothing else is left in it (an operator's own files stay)."""
    directory = host.path(f"{paths.DOCKER_CERTS_DIR}/{netloc}")
    for name in ("ca.crt", "client.cert", "client.key"):
        (directory / name).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        directory.rmdir()


def client_files(host: paths.Host, netloc: str) -> tuple[Path, Path]:
    """Where the unit's client certificate and key for ``netloc`` live."""
    directory = host.path(f"{paths.DOCKER_CERTS_DIR}/{netloc}")
    return directory / "client.cert", directory / "client.key"


def trust(
    host: paths.Host,
    *,
    netloc: str,
    ca: str,
    previous: dict | None,
    client: tuple[str, str] | None = None,
) -> dict:
    """Make the local engine trust ``netloc`` (and present ``client``, a (cert, key) pair, when
    given with a CA); returns the state to pass as ``previous`` next."""
    previous = previous or {}
    wanted = {"netloc": netloc, "tls": bool(ca)}
    changed_daemon = False
    old_netloc = previous.get("netloc")
    if old_netloc and (old_netloc != netloc or previous.get("tls") != bool(ca)):
        if previous.get("tls"):
            _forget_certs_dir(host, old_netloc)
        else:
            changed_daemon |= _set_insecure(host, remove=old_netloc)
    if ca:
        files.write_if_changed(host.path(f"{paths.DOCKER_CERTS_DIR}/{netloc}/ca.crt"), ca, 0o644)
        cert_file, key_file = client_files(host, netloc)
        if client:
            files.write_if_changed(key_file, client[1], 0o600)
            files.write_if_changed(cert_file, client[0], 0o644)
        else:
            cert_file.unlink(missing_ok=True)
            key_file.unlink(missing_ok=True)
    else:
        changed_daemon |= _set_insecure(host, add=netloc)
    if changed_daemon and not reload_daemon():
        wanted["reload_failed"] = True  # the next change retries; the status says so
    return wanted
