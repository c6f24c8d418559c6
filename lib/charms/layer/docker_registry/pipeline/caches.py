"""Pull-through caches beside the push registry: one registry 2.8 container per upstream
(a 2.8 registry proxies exactly one upstream and then refuses pushes).

Pure: where clients reach each cache, which way each cache runs (proxying, or serving what
it holds while its upstream cannot be reached) and the upstream probe's verdict. The
containers themselves go through ``workload`` like the push registry (``apply.caches``).
"""

from __future__ import annotations

import os
import ssl
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from charms.layer.docker_registry.config.settings import Settings
from charms.layer.docker_registry.config.upstreams import UpstreamCache
from charms.layer.docker_registry.pipeline.clients import bracket

PROBE_TIMEOUT = 5  # seconds an upstream has to answer /v2/ before its cache is "unreachable"


def cache_endpoints(settings: Settings, netloc_host: str, scheme: str) -> dict[str, str]:
    """Each upstream host -> the URL clients pull it from: ``scheme://<netloc_host>:<port>``.

    netloc_host: the host clients reach the push registry by (http-host's, the proxy's public
    address or the unit's, without port); scheme: ``https`` when the registry serves TLS. A
    cache listens on its own port at the same host (behind haproxy: the same frontend port),
    so this is what a containerd ``hosts.toml`` (or a custom-registries entry) for that host
    names, with the push registry's CA and credentials."""
    host = bracket(netloc_host)
    return {cache.host: f"{scheme}://{host}:{cache.port}" for cache in settings.caches}


@dataclass(frozen=True)
class Verdict:
    """What a unit found of one upstream: answering (any HTTP answer to /v2/, 401 included)
    or why not (no secret: the URL's host at most)."""

    reachable: bool
    why: str = ""
    basic_auth: bool = False  # it asks for basic auth, to which 2.8 sends no credentials


def probe_upstream(
    cache: UpstreamCache, *, http_proxy: str = "", https_proxy: str = ""
) -> Verdict:
    """GET <upstream>/v2/ as the cache would (through registry-http(s)-proxy when set).

    Any HTTP answer means the upstream is there (it wants a token: 401); only no answer at
    all (refused, timed out, no route, TLS failure) makes it unreachable. A 2.8 proxy asks
    the same at start and does not start without an answer."""
    proxies = {k: v for k, v in (("http", http_proxy), ("https", https_proxy)) if v}
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler(proxies),
        urllib.request.HTTPSHandler(context=ssl.create_default_context()),
    )
    try:
        with opener.open(f"{cache.url}/v2/", timeout=PROBE_TIMEOUT):
            return Verdict(True)
    except urllib.error.HTTPError as exc:
        challenge = (exc.headers.get("WWW-Authenticate") or "").strip().lower()
        return Verdict(True, basic_auth=challenge.startswith("basic"))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return Verdict(False, type(reason).__name__)


def probe_upstreams(
    upstreams: tuple[UpstreamCache, ...], *, http_proxy: str = "", https_proxy: str = ""
) -> dict[str, Verdict]:
    """Every upstream probed at once: a hook waits PROBE_TIMEOUT at most, however many
    upstreams a firewall drops."""
    if not upstreams:
        return {}
    with ThreadPoolExecutor(len(upstreams)) as pool:
        verdicts = pool.map(
            lambda c: probe_upstream(c, http_proxy=http_proxy, https_proxy=https_proxy),
            upstreams,
        )
        return {c.host: v for c, v in zip(upstreams, verdicts, strict=True)}


def stored_bytes(directory: Path) -> int:
    """What a cache holds on filesystem storage, in bytes (0 when nothing is there yet)."""
    total = 0
    for root, _, names in os.walk(directory):
        for name in names:
            try:
                total += (Path(root) / name).lstat().st_size
            except OSError:
                continue
    return total
