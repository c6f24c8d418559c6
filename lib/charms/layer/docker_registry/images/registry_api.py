"""A small client for the registry's HTTP API (v2): catalog, tags, digests, deletes.

Keep-alive connections (one per thread), basic auth by header, TLS verified with the charm's
CA. Errors never contain credentials: the Authorization header is the only place they live.
"""

from __future__ import annotations

import base64
import fnmatch
import http.client
import json
import re
import ssl
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from charms.layer.docker_registry.errors import RegistryCharmError

MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
)
CATALOG_PAGE = 1000  # registry 2.8's default catalog.maxentries; more → 400
_LINK_NEXT_RE = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
# TLS alerts a server sends about the client's certificate: bad_certificate,
# certificate_required / _unknown / _expired / _revoked, unknown_ca
_CLIENT_CERT_ALERTS = ("CERTIFICATE", "UNKNOWN_CA")


def _client_cert_alert(exc: BaseException) -> bool:
    text = str(exc).upper()
    return (
        isinstance(exc, ssl.SSLError)
        and "ALERT" in text
        and any(alert in text for alert in _CLIENT_CERT_ALERTS)
    )


class RegistryApiError(RegistryCharmError):
    """The registry refused or failed a request; ``status`` is the HTTP status (0: no answer)."""

    def __init__(self, message: str, status: int = 0, code: str = ""):
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> dict:
        try:
            return json.loads(self.body or b"{}")
        except ValueError as exc:
            raise RegistryApiError("the registry answered with invalid JSON", self.status) from exc

    def error_code(self) -> str:
        try:
            errors = json.loads(self.body or b"{}").get("errors") or []
            return str(errors[0].get("code", "")) if errors else ""
        except (ValueError, AttributeError, IndexError, TypeError):
            return ""


@dataclass
class Registry:
    """The registry at ``url`` (scheme://host[:port]); credentials only in a header."""

    url: str
    user: str = ""
    password: str = field(default="", repr=False)
    ca_file: str = ""
    timeout: float = 30
    check_hostname: bool = True  # False: chain still verified (our own unit by address)
    client_pair: tuple[str, str] | None = None  # (cert file, key file) for mutual TLS
    _local: threading.local = field(default_factory=threading.local, repr=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RegistryApiError("the registry URL must be http(s)://host[:port]")
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._context = None
        if self._scheme == "https":
            context = ssl.create_default_context(cafile=self.ca_file or None)
            context.check_hostname = self.check_hostname
            if self.client_pair:
                try:
                    context.load_cert_chain(*self.client_pair)
                except (OSError, ssl.SSLError) as exc:
                    raise RegistryApiError(
                        f"cannot load the client certificate {self.client_pair[0]}"
                    ) from exc
            self._context = context

    # -- transport ------------------------------------------------------------------------

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self._context is not None:
                conn = http.client.HTTPSConnection(
                    self._host, self._port, timeout=self.timeout, context=self._context
                )
            else:
                conn = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
            self._local.conn = conn
        return conn

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = {"User-Agent": "docker-registry-charm"}
        if self.password:
            token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        return headers | (extra or {})

    def request(self, method: str, path: str, headers: dict[str, str] | None = None) -> Response:
        """One request on this thread's keep-alive connection (retried once if it went stale)."""
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request(method, path, headers=self._headers(headers))
                resp = conn.getresponse()
                body = resp.read()
            except ssl.SSLCertVerificationError as exc:
                self._drop_connection()
                raise RegistryApiError(
                    f"TLS verification of {self._host} failed: {exc.verify_message}"
                ) from exc
            except (http.client.HTTPException, OSError) as exc:
                self._drop_connection()
                if _client_cert_alert(exc):
                    raise RegistryApiError(
                        "the registry requires a client certificate (tls-client-auth) and "
                        + ("refused this unit's" if self.client_pair else "this unit has none")
                    ) from exc
                if attempt == 2:
                    raise RegistryApiError(
                        f"no answer from the registry at {self._scheme}://{self._host}:"
                        f"{self._port} ({type(exc).__name__})"
                    ) from exc
                continue
            if resp.getheader("Connection", "").lower() == "close":
                self._drop_connection()
            headers_out = {k.lower(): v for k, v in resp.getheaders()}
            return Response(resp.status, headers_out, body)
        raise AssertionError("unreachable")  # pragma: no cover

    def _check(self, resp: Response, what: str, ok: tuple[int, ...] = (200,)) -> Response:
        if resp.status in ok:
            return resp
        code = resp.error_code()
        if resp.status == 401:
            challenge = resp.headers.get("www-authenticate", "")
            if challenge.lower().startswith("bearer"):
                why = "the registry uses token auth, which this action cannot obtain"
            elif self.password:
                why = "the registry refused the charm's credentials (auth-basic-*)"
            else:
                why = "the registry requires authentication"
            raise RegistryApiError(f"{what}: {why}", 401, code)
        detail = f" ({code})" if code else ""
        raise RegistryApiError(f"{what}: HTTP {resp.status}{detail}", resp.status, code)

    # -- API --------------------------------------------------------------------------------

    def ping(self) -> None:
        self._check(self.request("GET", "/v2/"), "GET /v2/")

    def catalog(self, page_size: int = CATALOG_PAGE) -> list[str]:
        """Every repository, following the Link header page by page."""
        return self._pages(
            f"/v2/_catalog?n={page_size}",
            "repositories",
            "catalog",
            fallback="/v2/_catalog?n=100",  # a registry with a smaller catalog.maxentries
        )

    def tags(self, repo: str) -> list[str]:
        """Tags of ``repo`` ([] when it has none or does not exist), all pages."""
        return self._pages(
            f"/v2/{repo}/tags/list?n={CATALOG_PAGE}",
            "tags",
            f"tags of {repo}",
            fallback=f"/v2/{repo}/tags/list",  # no pagination support: one page
            missing_ok=True,
        )

    def _pages(
        self, path: str, key: str, what: str, *, fallback: str, missing_ok: bool = False
    ) -> list[str]:
        """``key``'s items over every page (Link rel="next"). A 400 on the first page retries
        once with ``fallback``; a 404 is "no items" when ``missing_ok``."""
        items: list[str] = []
        seen: set[str] = set()
        while path and path not in seen:
            seen.add(path)
            resp = self.request("GET", path)
            if resp.status == 404 and missing_ok:
                return items
            if resp.status == 400 and not items and path != fallback:
                path = fallback
                continue
            self._check(resp, what)
            items += resp.json().get(key) or []
            path = _next_link(resp.headers.get("link", ""), path)
        return items

    def list_images(self, repository: str = "", workers: int = 8) -> dict[str, list[str]]:
        """{repository: sorted tags}, tag lists fetched concurrently; ``repository`` filters
        by fnmatch pattern (when it has *?[) or by prefix (exact name or name/...)."""
        repos = [r for r in self.catalog() if matches(r, repository)]
        if not repos:
            return {}
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(repos)))) as pool:
            tag_lists = list(pool.map(self.tags, repos))
        return {repo: sorted(tags) for repo, tags in sorted(zip(repos, tag_lists, strict=True))}

    def digest(self, repo: str, reference: str) -> str | None:
        """The manifest digest ``reference`` (tag or digest) resolves to; None: not found."""
        resp = self.request(
            "HEAD", f"/v2/{repo}/manifests/{reference}", {"Accept": ", ".join(MANIFEST_TYPES)}
        )
        if resp.status == 404:
            return None
        self._check(resp, f"manifest {repo}:{reference}")
        digest = resp.headers.get("docker-content-digest", "")
        if not _DIGEST_RE.match(digest):
            raise RegistryApiError(f"manifest {repo}:{reference}: the registry sent no digest")
        return digest

    def tag_digests(self, repo: str, workers: int = 8) -> dict[str, str | None]:
        """{tag: digest} for every tag of ``repo`` (HEADs in parallel)."""
        tags = self.tags(repo)
        if not tags:
            return {}
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(tags)))) as pool:
            digests = list(pool.map(lambda t: self.digest(repo, t), tags))
        return dict(zip(tags, digests, strict=True))

    def delete_manifest(self, repo: str, digest: str) -> None:
        """DELETE by digest (by tag the registry answers 400)."""
        if not _DIGEST_RE.match(digest):
            raise RegistryApiError(f"not a sha256 digest: {digest[:80]}")
        resp = self.request("DELETE", f"/v2/{repo}/manifests/{digest}")
        if resp.status == 405:
            raise RegistryApiError(
                "the registry refuses deletes: set storage-delete=true "
                "(and storage-read-only=false)",
                405,
                resp.error_code(),
            )
        if resp.status == 404:
            raise RegistryApiError(f"{repo}@{digest} is not in the registry", 404)
        self._check(resp, f"delete {repo}@{digest}", ok=(202, 200))

    def close(self) -> None:
        self._drop_connection()


def _next_link(link: str, current: str) -> str:
    """The path of the rel="next" link, relative to the current request ("" when none)."""
    match = _LINK_NEXT_RE.search(link or "")
    if not match:
        return ""
    target = urlsplit(urljoin(current, match.group(1)))
    return target.path + (f"?{target.query}" if target.query else "")


def matches(repo: str, pattern: str) -> bool:
    """fnmatch when ``pattern`` has wildcards; else the repository or anything under it."""
    pattern = pattern.strip().strip("/")
    if not pattern:
        return True
    if any(c in pattern for c in "*?["):
        return fnmatch.fnmatchcase(repo, pattern)
    return repo == pattern or repo.startswith(pattern + "/")


def format_listing(images: dict[str, list[str]]) -> str:
    """Readable text: one line per repository with its tags."""
    if not images:
        return "no repositories"
    width = max(len(r) for r in images)
    return "\n".join(
        f"{repo:<{width}}  {', '.join(tags) if tags else '(no tags)'}"
        for repo, tags in images.items()
    )
