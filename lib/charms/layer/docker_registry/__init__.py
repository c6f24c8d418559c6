"""Plain-value library behind the docker-registry charm.

Decisions (settings, plan, render, proxy, status, custom_registries) take plain values and
return plain values. Side effects are in named places: ``apply``, ``workload`` and ``publish``
for a hook's apply step (``apply`` also reads the resource, leadership data and opened ports
itself), ``container`` (docker CLI), ``engine`` (packages/daemon), ``files`` and ``trust``
(host files), and the two HTTP probes ``clients.probe`` and ``caches.probe_upstreams``.
"""
