"""What this unit tells the far side of its relations, through the upstream interface layers'
own endpoint objects (passed in: this module reads no hook tool itself)."""

from __future__ import annotations

from typing import Any

from charms.reactive import is_flag_set

from charms.layer.docker_registry.config.settings import Settings
from charms.layer.docker_registry.pipeline import clients, proxy
from charms.layer.docker_registry.pipeline.plan import Inputs, Plan


def proxy_public_addresses(website: Any) -> list[str]:  # the http layer's Endpoint
    """What each haproxy unit wrote back on ``website`` (raw ``public-address``), in order."""
    found: list[str] = []
    for unit in website.all_joined_units:
        address = unit.received_raw["public-address"]
        if address and address not in found:
            found.append(address)
    return found


def to_clients(registry: Any, config: Settings, plan: Plan, scheme: str) -> None:
    """docker-registry: netloc, URL, credentials and CA to every client (containerd, docker).
    Image requests from clients are acknowledged: the registry serves what is pushed to it."""
    if not registry.relations:
        return
    data = clients.client_data(
        config, netloc=plan.netloc, scheme=scheme, tls_ca=plan.tls.ca if plan.tls else ""
    )
    registry.set_registry_config(
        data.registry_netloc,
        registry_url=data.registry_url,
        basic_user=data.basic_user,
        basic_password=data.basic_password,
        tls_ca=data.tls_ca,
    )
    if is_flag_set("endpoint.docker-registry.requests-pending"):
        registry.mark_completed()


def to_proxy(
    website: Any, config: Settings, inputs: Inputs, plan: Plan, primary: str | None = None
) -> None:
    """website: the leader speaks for the application, one service with every unit a server;
    the other units offer no port, so haproxy does not make a default service of them."""
    if not website.relations:
        return
    if not inputs.leader:
        website.set_remote(hostname=None, port=None, services=None)
        return
    services = proxy.services(
        inputs.peers,
        config.registry_port,
        tls=plan.tls is not None,
        client_auth=config.tls_client_auth,
        shared=config.storage.kind != "filesystem",
        primary=primary,
    )
    for cache in config.caches:  # each cache: a further service, on its own port
        services += proxy.services(
            inputs.peers,
            cache.port,
            tls=plan.tls is not None,
            client_auth=config.tls_client_auth,
            name=proxy.cache_service_name(cache.host),
        )
    website.configure(config.registry_port, inputs.address, inputs.hostname)
    website.set_remote(services=proxy.services_yaml(services))
