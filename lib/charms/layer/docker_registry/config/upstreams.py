"""Pull-through caches: the cache-* options and caches-* list -> one typed cache per upstream.

Every problem names the option and why, never the value: values may be secrets.
"""

from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from charms.layer.docker_registry.config.reader import (
    Reader,
    is_host,
    url_problem,
)


@dataclass(frozen=True)
class PullThroughCache:
    remoteurl: str
    username: str = ""
    password: str = field(default="", repr=False)


@dataclass(frozen=True)
class UpstreamCache:
    """One pull-through cache beside the push registry (the ``caches`` option).

    host: what clients ask for (``docker.io``, ``registry.local:5000``), lower case;
    url: where the cache fetches from; port: where it listens on the unit."""

    host: str
    url: str
    port: int
    username: str = ""
    password: str = field(default="", repr=False)


def parse_cache(r: Reader) -> PullThroughCache | None:
    remoteurl = r.url("cache-remoteurl")
    username = r.single_line("cache-username")
    password = r.single_line("cache-password")
    if bool(username) != bool(password):
        r.fail(
            "cache-password" if username else "cache-username",
            "cache-username and cache-password go together",
        )
        return None
    if not remoteurl:
        if username and not r.config.get("cache-remoteurl"):
            r.fail("cache-username", "is only used with cache-remoteurl")
        return None
    return PullThroughCache(remoteurl=remoteurl, username=username, password=password)


# Caches without ``,port=N`` listen on a port derived from their host alone, so adding or
# removing another cache never moves one that clients already use.
DERIVED_PORT_BASE, DERIVED_PORT_SPAN = 5100, 900
_CACHE_PORT_RE = re.compile(r"^port=([0-9]{1,5})$")


def derived_cache_port(host: str) -> int:
    """The port a cache of ``host`` listens on unless pinned: 5100-5999, from the host name."""
    return DERIVED_PORT_BASE + zlib.crc32(host.encode()) % DERIVED_PORT_SPAN


def _upstream_host(text: str) -> str:
    """``host[:port]`` as containerd names a registry, lower case; "" when it is not one."""
    try:
        parts = urlsplit(f"//{text}")
        port = parts.port
    except ValueError:
        return ""
    hostname = parts.hostname or ""
    if parts.netloc != text or text.endswith(":") or port == 0 or "@" in text:
        return ""
    if not is_host(hostname) or hostname.endswith("."):
        return ""
    return text.lower()


def _cache_entry(r: Reader, number: int, entry: str) -> tuple[str, str, int] | None:
    """``<host>=<url>[,port=<n>]`` -> (host, url, port); problems name the entry by number
    (a URL may carry what should not be shown) and the host once it is a valid one."""
    where = f"entry {number}"
    host_text, sep, rest = entry.partition("=")
    host = _upstream_host(host_text)
    if not sep or not host:
        r.fail("caches", f"{where} must be <host>=<url>[,port=<n>] with a registry host name")
        return None
    url, _, pinned = rest.partition(",")
    problem = url_problem(url)
    if not problem and (urlsplit(url).username or urlsplit(url).password):
        problem = "must not contain credentials (use caches-credentials)"
    if not problem and (urlsplit(url).query or urlsplit(url).fragment):
        problem = "must not have a query or fragment"
    if problem:
        r.fail("caches", f"the URL of {host} {problem}")
        return None
    port = derived_cache_port(host)
    if pinned:
        match = _CACHE_PORT_RE.match(pinned)
        if not match or not 1 <= int(match.group(1)) <= 65535:
            r.fail("caches", f"{host}: what follows the URL must be ,port=<1-65535>")
            return None
        port = int(match.group(1))
    return host, url.rstrip("/"), port


def _cache_credentials(r: Reader, hosts: set[str]) -> dict[str, tuple[str, str]]:
    """caches-credentials: a JSON object, host -> {"username": ..., "password": ...}."""
    text = r.text("caches-credentials")
    if not text:
        return {}
    shape = 'must be a JSON object {"<host>": {"username": "...", "password": "..."}}'
    try:
        value = json.loads(text)
    except ValueError:
        r.fail("caches-credentials", shape)
        return {}
    if not isinstance(value, dict):
        r.fail("caches-credentials", shape)
        return {}
    found: dict[str, tuple[str, str]] = {}
    for number, (host, creds) in enumerate(value.items(), start=1):
        where = f"entry {number}"
        if not isinstance(creds, dict) or set(creds) != {"username", "password"}:
            r.fail("caches-credentials", f"{where} {shape}")
            continue
        user, password = creds["username"], creds["password"]
        if not all(isinstance(v, str) and v and v.isprintable() for v in (user, password)):
            r.fail("caches-credentials", f"{where}: username and password must be non-empty text")
            continue
        key = str(host).lower()
        if key not in hosts:
            r.fail("caches-credentials", f"{where} names a host that is not in caches")
            continue
        found[key] = (user, password)
    return found


def parse_caches(r: Reader, registry_port: int, debug_port: int) -> tuple[UpstreamCache, ...]:
    """The ``caches`` option: whitespace-separated ``<host>=<url>[,port=<n>]`` entries."""
    entries = r.text("caches").split()
    parsed: list[tuple[str, str, int]] = []
    for number, entry in enumerate(entries, start=1):
        one = _cache_entry(r, number, entry)
        if one:
            parsed.append(one)
    hosts: set[str] = set()
    ports = {registry_port: "registry-port", debug_port: "debug-port"}
    for host, _, port in parsed:
        if host in hosts:
            r.fail("caches", f"{host} is listed twice")
        elif port in ports:
            r.fail("caches", f"{host}: port {port} is taken by {ports[port]} (pin one: ,port=<n>)")
        hosts.add(host)
        ports.setdefault(port, host)
    credentials = _cache_credentials(r, hosts)
    return tuple(
        UpstreamCache(host, url, port, *credentials.get(host, ("", "")))
        for host, url, port in parsed
    )
