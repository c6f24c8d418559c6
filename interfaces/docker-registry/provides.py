"""Provides side of the docker-registry interface (our charm).

Every value goes JSON-encoded into our unit databag on every relation: ``registry_netloc``,
``registry_url``, ``basic_user``, ``basic_password`` (both or neither, else both null) and
``tls_ca`` (CA PEM or null).  Consumers: the containerd and docker charms.

Call ``set_registry_data`` whenever ``endpoint.{endpoint_name}.joined`` is set (unchanged
values are not rewritten, so repeating the call is cheap); a client joining later then gets
the data too.
"""

from __future__ import annotations

from charmhelpers.core import hookenv
from charms.reactive import Endpoint


class DockerRegistryProvides(Endpoint):
    """Publish the registry location, credentials and CA to clients."""

    @property
    def clients_joined(self) -> bool:
        """Whether any client unit is joined."""
        return self.is_joined

    def set_registry_data(
        self,
        netloc: str,
        url: str,
        basic_user: str | None = None,
        basic_password: str | None = None,
        tls_ca: str | None = None,
    ) -> None:
        """Publish the registry data on every relation (secrets are never logged)."""
        if not (basic_user and basic_password):
            basic_user = basic_password = None
        data = {
            "registry_netloc": netloc,
            "registry_url": url,
            "basic_user": basic_user,
            "basic_password": basic_password,
            "tls_ca": tls_ca or None,
        }
        changed = False
        for relation in self.relations:
            for key, value in data.items():
                if relation.to_publish.get(key, ...) != value:
                    relation.to_publish[key] = value
                    changed = True
        if changed:
            auth = "basic auth" if basic_user else "no auth"
            tls = "TLS" if tls_ca else "no TLS"
            hookenv.log(f"Published registry {url} to clients ({auth}, {tls})")
