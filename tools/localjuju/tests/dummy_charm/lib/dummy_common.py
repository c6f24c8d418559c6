"""Dummy charm logic: every hook goes through charmhelpers.core.hookenv (formats under test)."""

import json
import os
import sys

from charmhelpers.core import hookenv
from charmhelpers.osplatform import get_platform


def record(key, value):
    path = os.path.join(hookenv.charm_dir(), "seen.json")
    data = {}
    if os.path.exists(path):
        with open(path) as fp:
            data = json.load(fp)
    data.setdefault(key, []).append(value)
    with open(path, "w") as fp:
        json.dump(data, fp, indent=1, sort_keys=True)


def hook(name):
    cfg = hookenv.config()
    hookenv.log(f"dummy {name}", level=hookenv.DEBUG)
    record("hooks", name)
    record(
        "env",
        {
            k: os.environ.get(k)
            for k in (
                "JUJU_UNIT_NAME",
                "JUJU_HOOK_NAME",
                "JUJU_RELATION",
                "JUJU_RELATION_ID",
                "JUJU_REMOTE_UNIT",
                "JUJU_REMOTE_APP",
                "JUJU_DEPARTING_UNIT",
                "JUJU_SECRET_ID",
                "JUJU_STORAGE_ID",
                "JUJU_MODEL_NAME",
                "JUJU_AVAILABILITY_ZONE",
                "DOCKER_REGISTRY_SANDBOX",
                "JUJU_CHARM_DIR",
                "CHARM_DIR",
            )
        }
        | {
            "cwd": os.getcwd(),
            "PATH": os.environ["PATH"],
            "python": os.path.realpath(sys.executable),
            "prefix": sys.prefix,
            "platform": get_platform(),
            "juju_version": str(hookenv.juju_version()),
        },
    )
    if cfg.get("fail-hook") == name:
        print("failing on purpose", file=sys.stderr)
        sys.exit(1)
    if "-storage-" in name:
        location = hookenv.storage_get("location")
        record("storage", {"hook": name, "ids": hookenv.storage_list("data"), "at": location})
        where = os.environ.get("DOCKER_REGISTRY_SANDBOX", "") + location
        with open(os.path.join(where, "seen-by-" + name), "w") as fp:
            fp.write(os.environ["JUJU_STORAGE_ID"])
    address = hookenv.unit_get("private-address")
    hookenv.open_port(cfg["port"])
    if name == "config-changed":
        record("config", dict(cfg))
        record("opened", hookenv.opened_ports())
        record("leader", hookenv.is_leader())
        record("primary", hookenv.network_get_primary_address("docker-registry"))
        record("resource", hookenv.resource_get("blob"))
        record("status_before", list(hookenv.status_get()))
        if hookenv.is_leader():
            hookenv.leader_set({"leader-unit": hookenv.local_unit(), "gone": None})
        record("leader_get", hookenv.leader_get())
        for rid in hookenv.relation_ids("cert-provider"):
            publish_cert_request(rid, cfg, address)
    for rid in hookenv.relation_ids("docker-registry"):
        hookenv.relation_set(
            rid,
            {
                "registry_netloc": json.dumps(f"{address}:{cfg['port']}"),
                "registry_url": json.dumps(f"http://{address}:{cfg['port']}"),
                "basic_user": "null",
                "basic_password": "null",
                "tls_ca": "null",
            },
        )
    rid = hookenv.relation_id()
    if rid and name.endswith(("-joined", "-changed")):
        if rid.startswith("cert-provider"):
            publish_cert_request(rid, cfg, address)
        remote = hookenv.remote_unit()
        if remote:
            record(
                "received",
                {
                    "rid": rid,
                    "remote": remote,
                    "data": hookenv.relation_get(rid=rid, unit=remote),
                    "missing": hookenv.relation_get("no-such-key", rid=rid, unit=remote),
                    "units": hookenv.related_units(rid),
                },
            )
    if name.endswith("-departed") or name.endswith("-broken"):
        record("membership", {"hook": name, "units": hookenv.related_units(rid) if rid else None})
    hookenv.status_set("active", f"ok {name}")


def publish_cert_request(rid, cfg, address):
    sans = [address] + [s for s in cfg.get("sans", "").split(",") if s]
    hookenv.relation_set(
        rid,
        {
            "unit_name": hookenv.local_unit().replace("/", "_"),
            "common_name": address,
            "sans": json.dumps(sans),
            "certificate_name": "server",
        },
    )


def action(name):
    import subprocess

    from charmhelpers.core.hookenv import action_fail, action_get, action_set

    if name == "boom":
        subprocess.check_call(["action-log", "about to fail"])
        action_fail("boom as requested")
        return
    if name == "crash":
        action_set({"partial": "yes"})
        print("crashing on purpose", file=sys.stderr)
        sys.exit(3)
    params = action_get()
    action_set({"echo": params["text"] * params["times"], "nested.key": "v"})
