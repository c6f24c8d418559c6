"""Plain-value library behind the docker-registry charm, in subpackages by role.

``config`` turns operator input into typed values; ``pipeline`` is one hook: ``juju`` (the one
Juju boundary: every hook tool read and written), the pure decisions (plan, work, render,
proxy, publish, status, datastore.decide, rolling, replicas) and the apply steps (``apply``,
``pull_through``, ``replication``, ``reconcile``); ``host`` holds every side effect on the
machine (``workload``, ``container``, ``engine``, ``files``, ``trust``, ``nrpe``); ``images`` the
image tooling (lists, references, the registry API, skopeo copies, archives); ``actions`` the
actions. The HTTP probes are ``clients.probe``, ``clients.storage_answers`` and
``caches.probe_upstreams``.
"""
