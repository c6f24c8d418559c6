"""What this unit tells the proxy (pure: ``juju`` writes it through the http interface
layer's endpoint; what clients are told is decided with the rest of the work, ``work``)."""

from __future__ import annotations

from charms.layer.docker_registry.config.settings import Settings
from charms.layer.docker_registry.pipeline import proxy
from charms.layer.docker_registry.pipeline.plan import Inputs, Plan


def to_proxy(
    config: Settings, inputs: Inputs, plan: Plan, primary: str | None = None
) -> str | None:
    """website: the leader speaks for the application, one service with every unit a server
    (and one more per pull-through cache, on its own port); None for the other units, which
    offer no port, so haproxy does not make a default service of them."""
    if not inputs.leader:
        return None
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
    return proxy.services_yaml(services)
