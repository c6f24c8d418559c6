"""The services the leader publishes to reverse proxies on ``website`` (pure).

Wire format (haproxy ``reverseproxy``, interface http): a list of
``{service_name, service_host, service_port, service_options, servers}`` where every server is
``[name, address, port, options]``. haproxy renders ``service_options`` into its frontend and
backend and one ``server <name> <address>:<port> <options>`` line per server.

Active/active on shared storage (S3, Swift): every unit holds every image, and an upload's
state is signed with the ``http.secret`` all units share while its data sits in the shared
storage, so the requests of one push may reach different units. Every unit is a server, none
``backup``, balanced request by request (``roundrobin``); a request whose connection a dead unit
refuses is sent to another one (``option redispatch``, ``retries``), and in http mode a GET or
HEAD a restarting unit drops unanswered is replayed on another one (``retry-on``).

Active/passive otherwise (filesystem storage: only the primary holds the pushes): exactly one
unit is active (the primary) and the others are ``backup``. The primary is the unit with the
lowest unit *number* (``/2`` before ``/10``, not string order), so the result does not depend on
which unit (leader) computes it.

Units serving plain http: ``mode http`` with an HTTP health check on ``/v2/`` (200, or 401 when
auth is on). Units serving TLS: ``mode tcp`` passthrough (clients verify the registry's own
certificate) with the same health check sent over TLS (``check-ssl verify none``: the check asks
whether the registry answers, not who it is). Units requiring client certificates
(``tls-client-auth``) turn away haproxy's check, which has none: there the check is a TCP connect.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from charms.layer.docker_registry.pipeline.clients import bracket
from charms.layer.docker_registry.pipeline.layout import cache_slug

SERVICE_NAME = "docker-registry"
SERVICE_HOST = "0.0.0.0"  # noqa: S104 - haproxy listens on every address
BALANCE = "leastconn"
SHARED_BALANCE = "roundrobin"  # active/active: every request balanced, even on one connection
RETRY = ["option redispatch", "retries 3"]  # a refused connection goes to another unit
# http mode: a request a restarting unit closes unanswered is retried on another one too; only
# GET and HEAD (idempotent), which haproxy buffers to replay: an upload (POST, PATCH, PUT) is
# retried only when it was never sent (conn-failure)
L7_RETRY = [
    "retry-on conn-failure empty-response response-timeout",
    "http-request disable-l7-retry unless METH_GET",
]
HEALTH_PATH = "/v2/"
CHECK = "check inter 1000 rise 2 fall 2"  # a dead primary is DOWN within ~2 s


def unit_number(unit: str) -> int:
    """``docker-registry/10`` -> 10 (names without a number sort last)."""
    _, _, number = unit.rpartition("/")
    return int(number) if number.isdigit() else 1 << 62


def server_name(unit: str) -> str:
    """``docker-registry/0`` -> ``docker-registry-0`` (haproxy server names have no ``/``)."""
    return unit.replace("/", "-")


def ordered_units(units: Iterable[str]) -> list[str]:
    """Unit names by unit number; the first one is the primary."""
    return sorted(set(units), key=lambda u: (unit_number(u), u))


def primary(units: Iterable[str]) -> str | None:
    ordered = ordered_units(units)
    return ordered[0] if ordered else None


def service_options(tls: bool, balance: str = BALANCE, client_auth: bool = False) -> list[str]:
    """haproxy options: mode, log format, balance and the health check."""
    check = [f"option httpchk GET {HEALTH_PATH}", "http-check expect rstatus (200|401)"]
    if tls and client_auth:
        return ["mode tcp", "option tcplog", f"balance {balance}"]
    if tls:
        return ["mode tcp", "option tcplog", f"balance {balance}", *check]
    return ["mode http", "option httplog", f"balance {balance}", *check]


def server_options(tls: bool, backup: bool, client_auth: bool = False) -> str:
    options = CHECK
    if tls and not client_auth:
        options += " check-ssl verify none"
    if backup:
        options += " backup"
    return options


def services(
    units: Mapping[str, str],
    registry_port: int,
    *,
    tls: bool,
    service_port: int | None = None,
    balance: str = BALANCE,
    client_auth: bool = False,
    name: str = SERVICE_NAME,
    shared: bool = False,
    primary: str | None = None,
) -> list[dict]:
    """The ``services`` list for the ``website`` relation.

    units: every registry unit (this one included) -> its address on the proxy's network.
    registry_port: where each unit's registry listens; service_port: where the proxy listens
    (default: the same port). client_auth: the units require client certificates. name: the
    service (a pull-through cache is a service of its own, see ``cache_service_name``).
    shared: the units share their storage (S3, Swift): all active, none backup.
    primary: the active unit when not shared (default: the lowest unit number).
    """
    ordered = ordered_units(units)
    if primary in ordered:  # (the replicated primary, recorded by the leader)
        ordered.remove(primary)
        ordered.insert(0, primary)
    servers = [
        [
            server_name(unit),
            units[unit],
            int(registry_port),
            server_options(tls, index > 0 and not shared, client_auth),
        ]
        for index, unit in enumerate(ordered)
    ]
    options = service_options(tls, SHARED_BALANCE if shared else balance, client_auth)
    return [
        {
            "service_name": name,
            "service_host": SERVICE_HOST,
            "service_port": int(service_port or registry_port),
            "service_options": options + RETRY + (L7_RETRY if not tls else [])
            if shared
            else options,
            "servers": servers,
        }
    ]


def cache_service_name(host: str) -> str:
    """The haproxy service of the pull-through cache of ``host`` (its own frontend port)."""
    return f"{SERVICE_NAME}-cache-{cache_slug(host)}"


def services_yaml(services: list[dict]) -> str:
    """The ``services`` value as haproxy reads it (a YAML document)."""
    import yaml  # local: only hooks with a proxy related need it

    return yaml.safe_dump(services, default_flow_style=False)


def proxy_netloc(public_address: str, port: int) -> str:
    """What clients dial through the proxy: ``address:port`` (IPv6 bracketed)."""
    return f"{bracket(public_address)}:{int(port)}"
