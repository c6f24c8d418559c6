"""What a containerd client is given to pull from this registry (pure).

Two consumers take a JSON array of registry entries:
- Canonical K8s' ``k8s`` charm, option ``containerd-custom-registries``: each entry becomes
  ``hosts.d/<host>/hosts.toml`` with ``server = <url>``, the CA and an ``Authorization``
  header. Keys: url, host, username, password, identitytoken, ca_file, cert_file, key_file,
  skip_verify, override_path; any other key is refused.
- charm-containerd (Charmed Kubernetes), option ``custom_registries``: CRI
  ``registry.mirrors."<host>".endpoint = [<url>]`` and ``registry.configs."<url>"`` auth and
  TLS tables. Keys: url, host, username, password, ca_file, cert_file, key_file,
  insecure_skip_verify; any other key is refused.

Only the keys both accept are written (url, host, username, password, ca_file, cert_file,
key_file; files as base64), so each JSON passes both parsers. An entry per mirrored upstream
host (``mirror-for``) points that host at a URL of ours: containerd then pulls
``docker.io/library/busybox`` from ``<url>/v2/library/busybox``.
"""

from __future__ import annotations

import base64
import json
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from charms.layer.docker_registry.config.reader import is_host

K8S_OPTION = "containerd-custom-registries"
CONTAINERD_OPTION = "custom_registries"
# containerd names Docker Hub images docker.io/...: a hosts.d entry under another of its
# names is never consulted
DOCKER_HUB_ALIASES = ("index.docker.io", "registry-1.docker.io")
MAX_MIRRORS = 32


class ClientConfigError(ValueError):
    """A parameter cannot be used; the message names it and says why."""


@dataclass(frozen=True)
class Access:
    """This registry as clients reach it: the URL they dial and what they present and trust."""

    url: str  # scheme://netloc (the proxy's or http-host's when there is one)
    username: str = ""
    password: str = field(default="", repr=False)
    ca_pem: str = ""  # the CA that signed the registry's certificate ("" without TLS)
    client_cert_pem: str = ""  # mutual TLS: the client certificate clients present
    client_key_pem: str = field(default="", repr=False)

    @property
    def netloc(self) -> str:
        return urlsplit(self.url).netloc


def parse_mirror_for(text: str, *, own_netloc: str) -> tuple[str, ...]:
    """Upstream hosts (``host[:port]``, comma or space separated) to point at this registry."""
    hosts: list[str] = []
    for word in (text or "").replace(",", " ").split():
        host = word.lower()
        why = _mirror_host_problem(host, own_netloc)
        if why:
            raise ClientConfigError(f"mirror-for: {word[:100]!r} {why}")
        if host in hosts:
            raise ClientConfigError(f"mirror-for: {host} is given twice")
        hosts.append(host)
    if len(hosts) > MAX_MIRRORS:
        raise ClientConfigError(f"mirror-for: at most {MAX_MIRRORS} hosts")
    return tuple(hosts)


def _mirror_host_problem(host: str, own_netloc: str) -> str:
    name, port = _split_port(host)
    if port is not None and not 0 < port < 65536:
        return "is not host[:port]: the port must be 1-65535"
    if port is None and ":" in name.strip("[]"):
        return "is not host[:port]: an IPv6 address needs brackets"
    if not is_host(name) or "://" in host or "/" in host:
        return "is not host[:port] (for example docker.io or ghcr.io)"
    if host in DOCKER_HUB_ALIASES:
        return "is Docker Hub under another name: containerd looks it up as docker.io"
    if host == own_netloc.lower():
        return "is this registry itself: it is always in the list"
    return ""


def _split_port(host: str) -> tuple[str, int | None]:
    if host.startswith("["):
        name, _, rest = host.partition("]")
        name += "]"
        if not rest:
            return name, None
        return name, _port(rest[1:]) if rest.startswith(":") else -1
    name, sep, port = host.rpartition(":")
    if not sep or ":" in name:
        return host, None
    return name, _port(port)


def _port(text: str) -> int:
    return int(text) if text.isdigit() and len(text) <= 5 else -1


def _b64(pem: str) -> str:
    return base64.b64encode(pem.encode()).decode()


def _credentials(access: Access) -> dict[str, str]:
    """What an entry carries so containerd authenticates and trusts the registry."""
    out: dict[str, str] = {}
    if access.username and access.password:
        out.update(username=access.username, password=access.password)
    if access.ca_pem:
        out["ca_file"] = _b64(access.ca_pem)
    if access.client_cert_pem and access.client_key_pem:
        out.update(cert_file=_b64(access.client_cert_pem), key_file=_b64(access.client_key_pem))
    return out


def k8s_registries(access: Access, mirrors: Mapping[str, str]) -> list[dict]:
    """``containerd-custom-registries``: this registry, then each mirrored host -> its URL.

    Every entry carries the credentials: the k8s charm writes one hosts.toml per host, each
    with its own CA file and Authorization header."""
    entries = [{"url": access.url, "host": access.netloc, **_credentials(access)}]
    for host, url in mirrors.items():
        entries.append({"url": url, "host": host, **_credentials(access)})
    return entries


def containerd_registries(
    access: Access, mirrors: Mapping[str, str], *, related: bool
) -> list[dict]:
    """``custom_registries`` for charm-containerd.

    Its template renders one ``registry.configs."<url>"`` table per entry with credentials,
    and a TOML table written twice makes containerd refuse its whole config: so only the first
    entry for a URL carries credentials. ``related``: containerd already gets this registry
    over the docker-registry relation, which renders ``mirrors."<netloc>"`` itself; a second
    entry for that host would be a duplicate table, so the registry's own entry is left out."""
    entries: list[dict] = []
    if not related:
        entries.append({"url": access.url, "host": access.netloc, **_credentials(access)})
    credited = {entry["url"] for entry in entries}
    for host, url in mirrors.items():
        entry = {"url": url, "host": host}
        if url not in credited:
            entry.update(_credentials(access))
            credited.add(url)
        entries.append(entry)
    return entries


def containerd_notes(access: Access, *, related: bool, caches: bool = False) -> list[str]:
    """What a charm-containerd operator must know about its JSON.

    charm-containerd keys the CRI ``registry.configs`` tables by the entry's URL, while
    containerd's CRI plugin looks them up by host[:port]: the CA and credentials of a
    custom_registries entry never reach a pull. Over the docker-registry relation it keys
    them by netloc and puts the CA in the system's trust store, which works; the mirror
    entries then ride on that."""
    notes = []
    if related and caches and access.password:
        notes.append(
            "containerd: its CRI plugin cannot send the credentials of custom_registries to "
            "the caches (keyed by URL, looked up by host): with basic auth on, Canonical K8s' "
            "hosts.toml reaches them, charm-containerd does not."
        )
    if related:
        return [
            "containerd: this registry itself comes over the docker-registry relation, so "
            "custom_registries holds only the mirror-for and cache entries.",
            *notes,
        ]
    if access.ca_pem or access.password:
        notes.append(
            "containerd: its CRI plugin does not apply custom_registries' CA and credentials "
            "(keyed by URL, looked up by host): relate it (juju integrate docker-registry "
            "containerd) and run client-config again."
        )
    if any(c in access.password for c in '"\\'):
        notes.append(
            'containerd: its template writes the password into config.toml unescaped: a " or '
            "\\ in it breaks containerd's config."
        )
    return notes


def as_json(entries: Sequence[dict]) -> str:
    return json.dumps(list(entries), separators=(",", ":"))


def config_command(application: str, option: str, entries: Sequence[dict]) -> str:
    """The ``juju config`` command that sets ``option`` of ``application`` to the entries."""
    return f"juju config {shlex.quote(application)} {option}={shlex.quote(as_json(entries))}"
