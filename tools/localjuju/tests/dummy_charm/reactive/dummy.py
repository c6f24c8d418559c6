"""Every hook of the dummy charm: one @hook handler that records it (lib/dummy_common.py)."""

import dummy_common
from charmhelpers.core import hookenv
from charms.reactive import hook

HOOKS = [
    "install",
    "leader-elected",
    "leader-settings-changed",
    "config-changed",
    "start",
    "stop",
    "remove",
    "upgrade-charm",
    "update-status",
    "secret-changed",  # (charm-tools makes no file for it: hooks/secret-changed is the layer's)
    "data-storage-attached",
    "data-storage-detaching",
] + [
    f"{endpoint}-relation-{kind}"
    for endpoint in ("docker-registry", "cert-provider", "peer")
    for kind in ("created", "joined", "changed", "departed", "broken")
]


@hook(*HOOKS)
def any_hook():
    dummy_common.hook(hookenv.hook_name())
