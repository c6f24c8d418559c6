"""The registry's address as clients see it, and the data published to them (pure)."""

from __future__ import annotations

import base64
import ipaddress
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from charms.layer.docker_registry.config import reader
from charms.layer.docker_registry.config.settings import Settings


def bracket(address: str) -> str:
    """IPv6 literals need brackets in a netloc."""
    try:
        if ipaddress.ip_address(address.strip("[]")).version == 6:
            return f"[{address.strip('[]')}]"
    except ValueError:
        pass
    return address


is_host = reader.is_host  # one definition of a host name for config and relation data


def netloc_host(netloc: str) -> str:
    """The host part of a netloc, without brackets or port."""
    return urlsplit(f"//{netloc}").hostname or netloc


def netloc(settings: Settings, *, ingress_address: str, proxy_netloc: str = "") -> str:
    """http-host's netloc when set; the proxy's (with its port) when proxied; else our own."""
    if settings.http_host:
        return settings.http_host.netloc
    if proxy_netloc:
        return proxy_netloc
    return f"{bracket(ingress_address)}:{settings.registry_port}"


@dataclass(frozen=True)
class ClientData:
    registry_netloc: str
    registry_url: str
    basic_user: str | None
    basic_password: str | None = field(repr=False)
    tls_ca: str | None

    def as_dict(self) -> dict:
        return {
            "registry_netloc": self.registry_netloc,
            "registry_url": self.registry_url,
            "basic_user": self.basic_user,
            "basic_password": self.basic_password,
            "tls_ca": self.tls_ca,
        }


@dataclass(frozen=True)
class Endpoint:
    """Where this unit's registry answers, saved by the last successful hook for actions.

    Holds no secret: credentials come from the config when an action needs them.
    """

    netloc: str  # what clients use (http-host, proxy or own address)
    url: str  # scheme://netloc
    local_url: str  # this unit's own registry, bypassing any proxy
    ca_file: str  # host path of the CA certificate clients need ("" without TLS)
    # mutual TLS (tls-client-auth): host paths of the unit's client certificate and key
    client_cert_file: str = ""
    client_key_file: str = ""

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in _ENDPOINT_FIELDS}

    @classmethod
    def from_dict(cls, data: dict | None) -> Endpoint | None:
        if not data:
            return None
        return cls(**{k: data.get(k, "") for k in _ENDPOINT_FIELDS})

    @property
    def client_pair(self) -> tuple[str, str] | None:
        """(cert file, key file) to present to the registry, or None."""
        if self.client_cert_file and self.client_key_file:
            return self.client_cert_file, self.client_key_file
        return None


_ENDPOINT_FIELDS = (
    "netloc",
    "url",
    "local_url",
    "ca_file",
    "client_cert_file",
    "client_key_file",
)


def client_data(settings: Settings, *, netloc: str, scheme: str, tls_ca: str) -> ClientData:
    basic = settings.basic_auth
    return ClientData(
        registry_netloc=netloc,
        registry_url=f"{scheme}://{netloc}",
        basic_user=basic.user if basic else None,
        basic_password=basic.password if basic else None,
        tls_ca=tls_ca or None,
    )


def probe(url: str, timeout: float = 3) -> bool:
    """Whether the registry answers ``<url>/v2/`` (200, or 401 when auth is on).

    Certificates are not verified: this asks whether the registry is up, not who it is.
    """
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(  # noqa: S310 - url is built by the charm: http(s) only
            f"{url}/v2/", timeout=timeout, context=context
        ) as resp:
            return resp.status == 200
    except urllib.error.HTTPError as exc:
        return exc.code == 401
    except urllib.error.URLError as exc:  # a TLS alert while connecting arrives wrapped
        return _asks_for_client_cert(exc.reason)
    except ssl.SSLError as exc:
        return _asks_for_client_cert(exc)
    except (OSError, ValueError):
        return False


def storage_answers(
    url: str,
    user: str = "",
    password: str = "",
    *,
    client_pair: tuple[str, str] | None = None,
    health_after: Callable[[], float] = lambda: 0.0,
    timeout: float = 15,
) -> bool | None:
    """Whether the registry at ``url`` reaches its storage backend: /v2/ answers without
    touching storage, the catalog lists it. True (200), False (a 5xx: the storage failed, or
    the registry's storage health check fails, which answers 503 to every request), None when
    it cannot tell (the registry unreachable, or mutual TLS without ``client_pair``).

    Where the catalog is not the charm's to list (token auth: 401), the registry's storage
    health check speaks: ``health_after()`` seconds later (when its verdict is in), /v2/ answers
    (True) or fails with 503 (False), whatever the auth."""
    code = _status(f"{url}/v2/_catalog?n=1", user, password, client_pair, timeout)
    if code in (401, 403):
        time.sleep(max(0.0, health_after()))
        code = _status(f"{url}/v2/", "", "", client_pair, timeout)
        if code in (200, 401):
            return True
    if code == 200:
        return True
    return False if code >= 500 else None


def _status(
    url: str, user: str, password: str, client_pair: tuple[str, str] | None, timeout: float
) -> int:
    """The HTTP status of a GET of ``url`` (0 when there was no HTTP answer)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    request = urllib.request.Request(url)  # noqa: S310 - http(s) only
    if user:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        if client_pair:
            context.load_cert_chain(*client_pair)
        with urllib.request.urlopen(request, timeout=timeout, context=context) as resp:  # noqa: S310
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, ValueError):
        return 0


def _asks_for_client_cert(error: object) -> bool:
    """Mutual TLS: the registry is up and turns away a client without a certificate (TLS 1.3
    says CERTIFICATE_REQUIRED; the registry's Go TLS 1.2 stack says BAD_CERTIFICATE)."""
    text = str(error).upper()
    return isinstance(error, ssl.SSLError) and (
        "CERTIFICATE_REQUIRED" in text or "ALERT_BAD_CERTIFICATE" in text
    )


def certificate_names(
    settings: Settings, *, addresses: list[str], hostname: str, proxies: Sequence[str] = ()
) -> tuple[str, list[str]]:
    """(common name, SANs) for the server certificate: every name clients may dial.

    The common name is this unit's own address, never ``http-host``: CAs such as easyrsa name
    certificates by common name and re-issue (revoking the old one) when a request repeats it,
    so units sharing one would revoke each other's certificate. Clients match the SANs."""
    names: list[str] = []
    for name in [*addresses, hostname, *proxies]:
        name = (name or "").strip("[]")
        if name and name not in names:
            names.append(name)
    if settings.http_host and settings.http_host.hostname not in names:
        names.append(settings.http_host.hostname)
    return names[0], sorted(names)
