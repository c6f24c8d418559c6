"""Where the controller used to live whole; kept so `from tools.localjuju.runner import ...`
(tests/e2e, tests/bench, demo) goes on working. The pieces:

    state.py      typed state.json (dataclasses, to_json/from_json, load/edit)
    meta.py       charm metadata, config and action-parameter types
    scheduler.py  which events a verb queues, membership and commits around a hook
    execution.py  running one hook/action/fake on its unit (env, hook tools, hooks.jsonl)
    controller.py the verbs and the settle loop
    status.py     `status`
"""

from __future__ import annotations

from .controller import Controller
from .execution import HOOK_TIMEOUT, KEEP_ENV
from .meta import action_params, convert_config_value, load_charm_meta
from .model import Model, ModelError

__all__ = [
    "HOOK_TIMEOUT",
    "KEEP_ENV",
    "Controller",
    "Model",
    "ModelError",
    "action_params",
    "convert_config_value",
    "load_charm_meta",
]
