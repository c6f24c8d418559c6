"""The client-config action: the JSON Canonical K8s' ``k8s`` charm and charm-containerd take to
pull from this registry and its pull-through caches (each upstream host -> its cache), and the
``juju config`` commands that set it.

It describes the registry as the last serving hook left it (the endpoint it recorded: the
proxy's or http-host's address, https with the CA when TLS is on) with the credentials of
the config. The output holds the basic-auth password (and, with tls-client-auth, the client
key): that is what the action is for, and actions.yaml says so; nothing is logged.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from charmhelpers.core import hookenv

from charms.layer.docker_registry import actions, records
from charms.layer.docker_registry.actions import ActionError, Params, custom_registries
from charms.layer.docker_registry.actions.custom_registries import Access, ClientConfigError
from charms.layer.docker_registry.config import settings
from charms.layer.docker_registry.pipeline import caches, clients

_APPLICATION_RE = re.compile(r"^[a-z](?:-?[a-z0-9]+)*$")


def client_config(params: Params) -> dict:
    k8s_app = _application(params, "k8s-application", "k8s")
    containerd_app = _application(params, "containerd-application", "containerd")
    endpoint = actions.ready()
    try:
        mirror_for = custom_registries.parse_mirror_for(
            params.text("mirror-for"), own_netloc=endpoint.netloc
        )
    except ClientConfigError as exc:
        raise ActionError(str(exc)) from exc
    _check_proxy_told(endpoint)
    config = actions.config()
    notes: list[str] = []
    access = _access(endpoint, config, notes)
    mirrors = dict.fromkeys(mirror_for, access.url) | _caches(config, access, mirror_for)
    k8s = custom_registries.k8s_registries(access, mirrors)
    related = _has_clients()
    containerd = custom_registries.containerd_registries(access, mirrors, related=related)
    notes += custom_registries.containerd_notes(
        access, related=related, caches=bool(config.caches)
    )
    results = {
        "registry": access.url,
        "k8s": custom_registries.as_json(k8s),
        "k8s-command": custom_registries.config_command(
            k8s_app, custom_registries.K8S_OPTION, k8s
        ),
        "containerd": custom_registries.as_json(containerd),
        "containerd-command": custom_registries.config_command(
            containerd_app, custom_registries.CONTAINERD_OPTION, containerd
        ),
    }
    if notes:
        results["notes"] = " ".join(notes)
    return results


def _caches(
    config: settings.Settings, access: Access, mirror_for: tuple[str, ...]
) -> dict[str, str]:
    """Each upstream with a pull-through cache -> the cache's URL, at the host clients reach
    the push registry by (a cache has its own port there, behind haproxy too)."""
    cached = caches.cache_endpoints(
        config, clients.netloc_host(access.netloc), urlsplit(access.url).scheme
    )
    both = [host for host in mirror_for if host in cached]
    if both:
        raise ActionError(
            f"mirror-for: {both[0]} has a pull-through cache (the caches option), which "
            "clients are pointed at already: leave it out of mirror-for"
        )
    return cached


def _application(params: Params, name: str, default: str) -> str:
    value = params.text(name, default) or default
    if not _APPLICATION_RE.match(value) or len(value) > 63:
        params.fail(name, "not a Juju application name (lower-case letters, digits, '-')")
    return value


def _check_proxy_told(endpoint: clients.Endpoint) -> None:
    """Behind haproxy clients must dial the proxy: until it has told its address, what the
    last hook recorded is this unit's own address, which is not what clients should get."""
    serving = records.serving()
    if serving and serving.proxied:
        return
    proxies = [u for rid in hookenv.relation_ids("website") for u in hookenv.related_units(rid)]
    if proxies and endpoint.netloc == _own_netloc(endpoint):
        raise ActionError(
            "the proxy on the website relation has not told its address yet: "
            "run client-config again once the status says proxied"
        )


def _own_netloc(endpoint: clients.Endpoint) -> str:
    return endpoint.local_url.split("://", 1)[-1]


def _has_clients() -> bool:
    return any(hookenv.related_units(rid) for rid in hookenv.relation_ids("docker-registry"))


def _access(endpoint: clients.Endpoint, config: settings.Settings, notes: list[str]) -> Access:
    username = password = ""
    if config.token_auth:
        notes.append(
            "Token auth (auth-token-*): the entries carry no credentials; the token service "
            "decides what clients may pull."
        )
    elif config.basic_auth:
        username, password = config.basic_auth.user, config.basic_auth.password
    https = endpoint.url.startswith("https://")
    if password and not https:
        notes.append("Warning: plain http: the password crosses the network in clear.")
    cert = key = ""
    if endpoint.client_pair:
        cert, key = (_read(path, "the client certificate") for path in endpoint.client_pair)
    return Access(
        url=endpoint.url,
        username=username,
        password=password,
        ca_pem=_read(endpoint.ca_file, "the CA certificate") if endpoint.ca_file else "",
        client_cert_pem=cert,
        client_key_pem=key,
    )


def _read(path: str, what: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise ActionError(
            f"cannot read {what} the last hook wrote ({exc.strerror or 'unreadable'}); "
            "the next hook writes it again"
        ) from exc
