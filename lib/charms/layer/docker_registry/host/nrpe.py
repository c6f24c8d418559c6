"""The nrpe-external-master check: does the registry answer ``/v2/``? (pure + one writer)

The check is a small stdlib-only Python script (``nrpe_check.py``) installed with
``install()``. It GETs ``<scheme>://<address>:<port>/v2/`` (https verified against the CA file)
and prints one line, exiting 0 (OK) or 2 (CRITICAL):

* 200 -> OK;
* 401 without credentials -> OK (auth is on, the registry is up);
* with ``--credentials-file`` (``user:password``, mode 0600, never on the command line) the
  credentials are sent and only 200 is OK (401 = rejected credentials);
* anything else, a refused connection, a timeout or a TLS failure -> CRITICAL.

With mutual TLS (``tls-client-auth``) the check presents the unit's client certificate
(``--client-cert`` / ``--client-key``: copies readable by the nagios user only).
"""

from __future__ import annotations

import os
import pwd
import shlex
from dataclasses import dataclass
from pathlib import Path

import yaml

from charms.layer.docker_registry.host.files import write_if_changed
from charms.layer.docker_registry.host.paths import Host
from charms.layer.docker_registry.pipeline.clients import bracket

SCRIPT_PATH = "/usr/local/lib/nagios/plugins/check_docker_registry"
CREDENTIALS_PATH = "/etc/nagios/docker-registry-check.credentials"
CLIENT_CERT_PATH = "/etc/nagios/docker-registry-check.client.cert"
CLIENT_KEY_PATH = "/etc/nagios/docker-registry-check.client.key"
CHECK_NAME = "docker_registry"
NAGIOS_USER = "nagios"

# The check itself is a real module (under lint and tests), installed as a script: stdlib only,
# so nrpe runs it with the system python3.
CHECK_SCRIPT = (Path(__file__).parent / "nrpe_check.py").read_text()


@dataclass(frozen=True)
class CheckDefinition:
    """What charmhelpers' ``NRPE.add_check(shortname, description, check_cmd)`` takes."""

    shortname: str
    description: str
    check_cmd: str


def check_definition(
    scheme: str,
    address: str,
    port: int,
    ca_file: str = "",
    credentials_file: str = "",
    script: str = SCRIPT_PATH,
    client_pair: tuple[str, str] | None = None,
) -> CheckDefinition:
    """The nrpe check for this unit's registry (no secret in it: credentials come from a file)."""
    if scheme not in ("http", "https"):
        raise ValueError(f"scheme must be http or https, not {scheme!r}")
    url = f"{scheme}://{bracket(address)}:{int(port)}"
    argv = [script, "--url", url]
    if scheme == "https" and ca_file:
        argv += ["--ca-file", ca_file]
    if credentials_file:
        argv += ["--credentials-file", credentials_file]
    if scheme == "https" and client_pair:
        argv += ["--client-cert", client_pair[0], "--client-key", client_pair[1]]
    return CheckDefinition(
        shortname=CHECK_NAME,
        description=f"Docker registry answers {scheme} on {bracket(address)}:{int(port)}",
        check_cmd=shlex.join(argv),
    )


def client_files(host: Host) -> tuple[str, str]:
    """Where ``install`` puts the client certificate and key for the check (host paths)."""
    return str(host.path(CLIENT_CERT_PATH)), str(host.path(CLIENT_KEY_PATH))


def credentials_content(user: str, password: str) -> str:
    return f"{user}:{password}\n"


def install(
    host: Host,
    credentials: tuple[str, str] | None = None,
    owner: str = NAGIOS_USER,
    client: tuple[str, str] | None = None,
) -> bool:
    """Write the check script (0755), the credentials file and the client certificate and key
    (0600, owned by ``owner`` when that user exists so nrpe can read them; removed when
    ``credentials`` / ``client`` is None).

    Returns whether anything changed.
    """
    changed = write_if_changed(host.path(SCRIPT_PATH), CHECK_SCRIPT, 0o755)
    private = {
        CREDENTIALS_PATH: credentials_content(*credentials) if credentials else None,
        CLIENT_CERT_PATH: client[0] if client else None,
        CLIENT_KEY_PATH: client[1] if client else None,
    }
    for path, content in private.items():
        target = host.path(path)
        if content is None:
            if target.exists():
                target.unlink()
                changed = True
            continue
        changed |= write_if_changed(target, content, 0o600)
        _chown(target, owner)
    return changed


def _chown(path: Path, owner: str) -> None:
    try:
        entry = pwd.getpwnam(owner)
    except KeyError:
        return  # no nagios user (yet): stays root-only
    if path.stat().st_uid != entry.pw_uid:
        os.chown(path, entry.pw_uid, entry.pw_gid)


NRPE_CONFIG_DIR = "/etc/nagios/nrpe.d"


def nrpe_command_file(check: CheckDefinition) -> tuple[str, str]:
    """(path, content) of the nrpe command definition, as charmhelpers' NRPE writes it."""
    command = f"check_{check.shortname}"
    content = (
        "# Written by the docker-registry charm\n"
        f"# {check.description}\n"
        f"command[{command}]={check.check_cmd}\n"
    )
    return f"{NRPE_CONFIG_DIR}/{command}.cfg", content


def monitors(check: CheckDefinition) -> str:
    """The ``monitors`` value for the nrpe-external-master relation (a YAML document)."""

    data = {
        "monitors": {
            "remote": {"nrpe": {check.shortname: {"command": f"check_{check.shortname}"}}}
        }
    }
    return yaml.safe_dump(data, default_flow_style=False)


def configure(
    host: Host,
    basic: tuple[str, str] | None,
    address: str,
    port: int,
    scheme: str,
    ca_file: str,
    identity: tuple[str, str] | None,
) -> CheckDefinition:
    """Install the check and its nrpe command file for the registry as served: the scheme
    actually served, logging in with the charm's basic-auth credentials (from a nagios-only
    file), presenting the unit's client certificate when the registry requires one."""
    check = check_definition(
        scheme,
        address,
        port,
        ca_file=ca_file,
        credentials_file=str(host.path(CREDENTIALS_PATH)) if basic else "",
        client_pair=client_files(host) if identity else None,
    )
    install(host, basic, client=identity)
    path, content = nrpe_command_file(check)
    write_if_changed(host.path(path), content, 0o644)
    return check
