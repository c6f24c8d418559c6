"""What one run does to this unit, decided from the plan and from what the host gave (pure).

A run is: gather (``juju.gather``), decide the plan (``plan.decide``: TLS, netloc, ports, status
facts), prepare the facts only the host has (``apply.prepare``: the image, the http secret,
the htpasswd line, whether each cache's upstream answers), decide the work (here: the
registry's and each cache's files and run spec, the rolling turn, the ports to open and
close, what clients are told, where actions will reach the registry), then apply it in a
fixed order (``reconcile``).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from charms.layer.docker_registry.config import credentials, settings
from charms.layer.docker_registry.config.upstreams import UpstreamCache
from charms.layer.docker_registry.host import paths, trust, workload
from charms.layer.docker_registry.pipeline import caches, clients, render, rolling
from charms.layer.docker_registry.pipeline.plan import Inputs, Plan


@dataclass(frozen=True)
class Facts:
    """What the push registry and every cache run with, found on the host once a run: the
    image (ensured), the cluster's http secret, the htpasswd line (hashing or verifying it is
    a bcrypt run) and what each cache's upstream answered."""

    image_id: str
    http_secret: str = field(repr=False)
    htpasswd: str = field(repr=False)
    resource: str = ""  # the sha256 of the registry-image resource loaded ("" without one)
    upstreams: Mapping[str, caches.Verdict] = field(default_factory=dict)


@dataclass(frozen=True)
class CacheWork:
    cache: UpstreamCache
    desired: render.Desired
    verdict: caches.Verdict


@dataclass(frozen=True)
class Work:
    registry: render.Desired
    caches: tuple[CacheWork, ...]
    token: str  # the rolling-change token of this config ("" when the unit is on its own)
    turn: rolling.Verdict  # whether it is this unit's turn to recreate a serving registry
    digests: Mapping[str, str]  # option -> keyed digest of its value
    changed: tuple[str, ...]  # the options that differ from the last config that answered
    open_ports: frozenset[str]
    close_ports: frozenset[str]
    client_data: clients.ClientData  # what clients are told
    endpoint: clients.Endpoint  # where actions reach the registry, once it serves


def decide(config: settings.Settings, inputs: Inputs, plan: Plan, facts: Facts) -> Work:
    registry = desired_run(config, inputs, plan, facts)
    digests = option_digests(inputs.config, facts.http_secret)
    good = inputs.recorded.good_options
    token, turn = _turn(inputs, facts)
    open_ports, close_ports = _ports(plan.ports, inputs)
    return Work(
        registry=registry,
        caches=tuple(
            # Without its upstream a cache serves what it holds as a read-only registry: a
            # 2.8 proxy would not start (it asks the upstream first), and a running one would
            # still expire content 7 days after caching it, with nothing to fetch it again.
            CacheWork(cache, desired_run(config, inputs, plan, facts, cache, not v.reachable), v)
            for cache in config.caches
            for v in [facts.upstreams.get(cache.host) or caches.Verdict(False, "not probed")]
        ),
        token=token,
        turn=turn,
        digests=digests,
        changed=tuple(sorted(n for n, d in digests.items() if good.get(n, d) != d)),
        open_ports=open_ports,
        close_ports=close_ports,
        client_data=clients.client_data(
            config,
            netloc=plan.netloc,
            scheme=registry.scheme,
            tls_ca=plan.tls.ca if plan.tls else "",
        ),
        endpoint=_endpoint(config, plan, registry),
    )


def desired_run(
    config: settings.Settings,
    inputs: Inputs,
    plan: Plan,
    facts: Facts,
    cache: UpstreamCache | None = None,
    offline: bool = False,
) -> render.Desired:
    """What the push registry (or, with ``cache``, that pull-through cache) should run: the
    one place a run's inputs become ``render.desired``'s arguments."""
    return render.desired(
        config,
        host=paths.current(),
        unit_address=inputs.address,
        tls=plan.tls,
        http_secret=facts.http_secret,
        htpasswd=facts.htpasswd,
        realm=inputs.application,
        cache=cache,
        offline=offline,
        collector=inputs.collector,  # (render leaves a cache's metrics listener off)
    )


def _endpoint(config: settings.Settings, plan: Plan, registry: render.Desired) -> clients.Endpoint:
    """Where actions reach the registry: clients' URL, this unit's own, the CA file and, under
    mutual TLS, this unit's client certificate files."""
    host = paths.current()
    ca_file = str(host.path(config.tls_paths.ca)) if plan.tls and plan.tls.ca else ""
    cert, key = trust.client_files(host, plan.netloc) if plan.identity else ("", "")
    return clients.Endpoint(
        netloc=plan.netloc,
        url=f"{registry.scheme}://{plan.netloc}",
        local_url=workload.probe_url(registry),
        ca_file=ca_file,
        client_cert_file=str(cert),
        client_key_file=str(key),
    )


def option_digests(options: Mapping, key: str) -> dict[str, str]:
    """A keyed digest of each option's value: which options changed since the registry last
    answered can be named without keeping any value (some are secrets)."""
    return {
        name: hmac.new(key.encode(), json.dumps(value).encode(), "sha256").hexdigest()[:16]
        for name, value in options.items()
    }


def _turn(inputs: Inputs, facts: Facts) -> tuple[str, rolling.Verdict]:
    """Rolling changes: the token of the config this unit is to run, and whether it is its
    turn to recreate a serving registry for it. Only behind a proxy with peers (inputs.peers
    is read for the proxy); a unit on its own applies at once, as without a proxy."""
    if len(inputs.peers) < 2:
        return "", rolling.GO
    options = credentials.effective_config(inputs.config, inputs.secret)
    # (the resource, not the image id: a tag each unit pulled at another time may differ)
    wanted = rolling.token(options, inputs.charm_build, facts.resource, facts.http_secret)
    waited = rolling.Waited.from_record(inputs.recorded.turn_wait)
    return wanted, rolling.decide(inputs.unit, wanted, inputs.turns, waited, inputs.now)


def _ports(wanted: frozenset[str], inputs: Inputs) -> tuple[frozenset[str], frozenset[str]]:
    """(to open, to close). Only this charm opens the unit's ports, so what it recorded stands
    for opened-ports (gather asks Juju only when there is no record)."""
    recorded = inputs.recorded.ports
    have = inputs.opened_ports if recorded is None else frozenset(recorded)
    have = have or frozenset()
    if recorded is not None and sorted(wanted) == list(recorded):
        return frozenset(), frozenset()
    return wanted - have, have - wanted
