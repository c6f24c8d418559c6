"""What the docker-registry charm published, as the upstream requires-side layers read it."""

import json
import os
from pathlib import Path

from charmhelpers.core import hookenv
from charms.reactive import endpoint_from_name, is_flag_set, when


@when("endpoint.reverseproxy.joined")
def publish_public_address():
    for relation in endpoint_from_name("reverseproxy").relations:
        relation.to_publish_raw["public-address"] = hookenv.unit_public_ip()


def _registry():
    registry = endpoint_from_name("docker-registry")
    if not registry.relations:
        return None
    ready = is_flag_set("endpoint.docker-registry.ready")
    reading = {"ready": ready}
    if ready:
        reading.update(
            registry_netloc=registry.registry_netloc,
            registry_url=registry.registry_url,
            basic_user=registry.basic_user,
            basic_password=registry.basic_password,
            tls_ca=registry.tls_ca,
            has_tls=registry.has_tls(),
            has_auth_basic=registry.has_auth_basic(),
        )
    return reading


def _reverseproxy():
    proxy = endpoint_from_name("reverseproxy")
    if not proxy.relations:
        return None
    return {
        "available": is_flag_set("reverseproxy.available"),
        "services": proxy.services(),
        "units": [
            [unit.unit_name, dict(unit.received_raw)]
            for relation in proxy.relations
            for unit in sorted(relation.joined_units, key=_unit_number)
        ],
    }


def _unit_number(unit):
    _, _, number = unit.unit_name.rpartition("/")
    return int(number) if number.isdigit() else 0


def record():
    reading = {
        "hook": hookenv.hook_name(),
        "docker-registry": _registry(),
        "reverseproxy": _reverseproxy(),
    }
    path = Path(hookenv.charm_dir()).parent / "reading.json"
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(reading, out, indent=1, sort_keys=True)
    os.replace(tmp, path)


hookenv.atexit(record)
