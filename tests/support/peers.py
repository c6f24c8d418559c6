"""The consumers' own code, loaded from the peers directory beside the repository (never
copied here): Canonical K8s' containerd module (k8s-operator) and charm-containerd's handlers
and config template. Both are Apache-2.0; the commits are pinned in the peers directory's
PROVENANCE.tsv.

Only what those modules import and this machine lacks is stood in for: k8s-operator's
``literals`` (the path of containerd's args file, which names its config.toml) and
charm-containerd's sibling layers (status, container_runtime_common: their names only). The
parsers, the hosts.toml writer and the template are the upstream code as it is.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from pathlib import Path

from tests.support.prereq import missing

ROOT = Path(__file__).resolve().parents[2]
PEERS = Path(os.environ.get("PEERS_DIR", ROOT.parent / "shared" / "peers"))
K8S_CONTAINERD = PEERS / "k8s-operator" / "containerd.py"
CHARM_CONTAINERD = PEERS / "charm-containerd"


def _load(name: str, path: Path) -> types.ModuleType:
    if not path.exists():
        missing(f"{path} is not there (the peers directory beside the repository)")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def k8s_containerd(config_dir: Path) -> types.ModuleType:
    """k8s-operator's containerd module, writing hosts.d under ``config_dir``.

    The module finds containerd's config directory in the args file its snap writes
    (``--config=<dir>/config.toml``); ``literals.CONTAINERD_ARGS_PATH`` points at one here."""
    config_dir.mkdir(parents=True, exist_ok=True)
    args = config_dir / "containerd-args"
    args.write_text(f'--config="{config_dir / "config.toml"}"\n')
    sys.modules["literals"] = types.SimpleNamespace(CONTAINERD_ARGS_PATH=args)  # type: ignore[assignment]
    module = _load(f"k8s_containerd_{abs(hash(config_dir))}", K8S_CONTAINERD)
    module.containerd_path.cache_clear()
    return module


def charm_containerd(unit_state_db: Path) -> types.ModuleType:
    """charm-containerd's reactive module (RegistryList, merge_custom_registries, ...).

    Its kv store (``DB``, where the docker-registry relation's entry is kept) is a fresh
    SQLite file; its sibling layers are reduced to the names it imports."""
    os.environ["UNIT_STATE_DB"] = str(unit_state_db)
    from charmhelpers.core import unitdata

    unitdata._KV = None
    for name, attrs in {
        "charms.layer.status": ("active", "blocked", "maintenance", "waiting"),
        "charms.layer.containerd": (),
        "charms.layer.container_runtime_common": (
            "ca_crt_path",
            "server_crt_path",
            "server_key_path",
            "check_for_juju_https_proxy",
        ),
    }.items():
        stand_in = types.ModuleType(name)
        for attr in attrs:
            setattr(stand_in, attr, None)
        sys.modules.setdefault(name, stand_in)
    return _load(
        f"charm_containerd_{abs(hash(unit_state_db))}",
        CHARM_CONTAINERD / "reactive" / "containerd.py",
    )


def charm_containerd_config(
    module: types.ModuleType, custom_registries: str, tls_dir: Path
) -> str:
    """config.toml as charm-containerd's config_changed renders it: its config.yaml defaults,
    ``custom_registries`` merged by its own code (TLS files written under ``tls_dir``), its
    v2 template."""
    import jinja2
    import yaml

    options = yaml.safe_load((CHARM_CONTAINERD / "config.yaml").read_text())["options"]
    context = {name: spec.get("default") for name, spec in options.items()}
    context.update(
        custom_registries=module.merge_custom_registries(str(tls_dir), custom_registries, None),
        runtime_type="io.containerd.runc.v2",
        runtime="runc",
        sandbox_image="registry.k8s.io/pause:3.9",
        untrusted=False,
    )
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(CHARM_CONTAINERD / "templates")))
    return env.get_template("config_v2.toml").render(context)
