"""Plain-value library behind the docker-registry charm.

Modules take plain values and return plain values; side effects live in
``container`` (docker CLI), ``engine`` (packages/daemon) and ``files`` (host files).
"""
