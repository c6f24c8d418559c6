"""What the operator reads when a new config does not start: the option to blame where one is,
the registry's or docker's own words otherwise, never a secret or this host's addresses.
"""

from __future__ import annotations

import re

from charms.layer.docker_registry.errors import DockerError
from charms.layer.docker_registry.pipeline.render import Desired

# what the registry's error lines quote of the network: URLs, addresses and host:port pairs
# (a storage or upstream endpoint's internal address does not belong in the status)
_URL_RE = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s\"'`]+", re.IGNORECASE)
_ADDRESS_RE = re.compile(
    r"\[[0-9a-f:.]+\](?::\d+)?|\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"
    r"|\b[a-z0-9-]+(?:\.[a-z0-9-]+)+:\d+\b",
    re.IGNORECASE,
)


def scrub(line: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            line = line.replace(secret, "***")
    line = _URL_RE.sub("<url>", line)
    return _ADDRESS_RE.sub("<address>", line)[:300]


def docker_refused(desired: Desired, exc: DockerError) -> tuple[str, bool]:
    """What the operator reads when docker would not run the new container (the option to
    blame where one is, docker's own words otherwise, never this host's addresses), and
    whether the next hook may try the same config again (the cause may pass)."""
    said = str(exc).lower()
    if "port is already allocated" in said or "address already in use" in said:
        ports = ", ".join(str(port) for _bind, port, _ in desired.run.ports)
        option = (
            desired.port_option
            if len(desired.run.ports) == 1
            else f"{desired.port_option} or debug-port"
        )
        return (
            f"{option}: a port ({ports}) was taken on this host while the registry restarted",
            True,
        )
    if "no such image" in said or "unable to find image" in said or "pull access denied" in said:
        return f"registry-image: {desired.run.image} is no longer on this host", True
    if "invalid spec" in said or "invalid volume" in said or "invalid mount" in said:
        return "docker refused to mount a file (tls-ca-path, tls-cert-path, tls-key-path)", False
    return f"docker could not run the new config ({scrub(str(exc), ())})", True
