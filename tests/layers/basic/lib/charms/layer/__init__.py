"""charms.layer as layer:basic/layer:options provide it (stand-in, offline builds)."""

import os

import yaml


def options(section=None, layer_file=None):
    """Return the merged `options` of layer.yaml (one section, or all)."""
    if not layer_file:
        base_dir = os.environ.get("JUJU_CHARM_DIR", os.environ.get("CHARM_DIR", os.getcwd()))
        layer_file = os.path.join(base_dir, "layer.yaml")
    with open(layer_file) as fp:
        opts = (yaml.safe_load(fp.read()) or {}).get("options", {})
    if section:
        return opts.get(section, {})
    return opts


def import_layer_libs():
    """Import every module in lib/charms/layer (as layer:basic does)."""
    import importlib
    import pkgutil

    for _, name, _ in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{name}")
