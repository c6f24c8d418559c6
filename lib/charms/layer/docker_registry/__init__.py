"""Plain-value library behind the docker-registry charm, in subpackages by role.

``config`` turns operator input into typed values; ``pipeline`` decides what a hook does (plan,
render, proxy, clients, status take and return plain values) and applies it (``apply``,
``publish``, ``cos``, which also reads the resource, leadership data and opened ports);
``host`` holds every side effect on the machine (``workload``, ``container``, ``engine``,
``files``, ``trust``, ``nrpe``); ``images`` the image tooling (lists, references, the registry
API, skopeo copies, archives); ``actions`` the actions. The two HTTP probes are
``clients.probe`` and ``caches.probe_upstreams``.
"""
