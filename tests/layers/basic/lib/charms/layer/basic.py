"""Stand-in for layer:basic's lib/charms/layer/basic.py (offline builds only).

What it keeps from layer:basic: the config.* flags set before dispatch and cleared at exit.
What it drops: bootstrapping a venv from the wheelhouse and apt packages; the interpreter that
runs the hook must already provide charms.reactive and charmhelpers.
"""

import os

import yaml


def bootstrap_charm_deps():
    """layer:basic installs the wheelhouse here; the stand-in only checks the imports."""
    try:
        import charmhelpers  # noqa: F401
        import charms.reactive  # noqa: F401
    except ImportError as exc:  # pragma: no cover - environment problem
        raise SystemExit(
            f"stand-in layer:basic: {exc}; point DOCKER_REGISTRY_PY at a python with "
            "charms.reactive and charmhelpers (e.g. the project's .venv)"
        ) from exc


def _config_defaults():
    config_yaml = os.path.join(os.environ.get("JUJU_CHARM_DIR", os.getcwd()), "config.yaml")
    if not os.path.exists(config_yaml):
        return {}
    with open(config_yaml) as fp:
        defs = (yaml.safe_load(fp) or {}).get("options", {}) or {}
    return {key: (value or {}).get("default") for key, value in defs.items()}


def init_config_states():
    """Set config.changed[.<opt>], config.set.<opt>, config.default.<opt> as layer:basic does.

    "changed" compares with the previous hook's config, which charmhelpers' Config keeps in
    the charm dir (.juju-persistent-config, saved at the end of every successful hook); on the
    first hook every option counts as changed.
    """
    from charmhelpers.core import hookenv
    from charms.reactive import set_flag, toggle_flag

    config = hookenv.config()
    defaults = _config_defaults()
    for opt in defaults:
        if config.changed(opt):
            set_flag("config.changed")
            set_flag(f"config.changed.{opt}")
        toggle_flag(f"config.set.{opt}", config.get(opt))
        toggle_flag(f"config.default.{opt}", config.get(opt) == defaults[opt])


def clear_config_states():
    """Clear the per-hook change flags at the end of a successful hook."""
    from charmhelpers.core import hookenv, unitdata
    from charms.reactive import clear_flag

    config = hookenv.config()
    clear_flag("config.changed")
    for opt in config:
        clear_flag(f"config.changed.{opt}")
    unitdata.kv().flush()
