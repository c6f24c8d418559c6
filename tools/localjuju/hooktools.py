"""Hook tools of the local model: `hooktools.py <tool> ARGS...` (run through bin/<tool> launchers).

Each tool reads the model (LOCALJUJU_MODEL, set by the launcher) and the running hook's context
file (<model>/ctx/<unit>.json, written by execution.py). Like Juju, relation-set and
open/close-port are buffered in the context and committed by the controller only when the hook
succeeds; status-set, juju-log, leader-set and action results take effect at once. Output
formats are what charmhelpers.core.hookenv parses. Every invocation is appended to audit.jsonl
(tool, argv, unit, hook, exit code).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

if __package__ in (None, ""):
    # the bin/ launchers run this file as a script (python -S): import the package from the
    # repository root; its modules use relative imports only
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tools.localjuju.hooktools_base import ToolError
    from tools.localjuju.hooktools_relations import RelationTools
    from tools.localjuju.hooktools_secrets import SecretTools
    from tools.localjuju.hooktools_storage import StorageTools
    from tools.localjuju.hooktools_unit import UnitTools
    from tools.localjuju.model import Model
else:
    from .hooktools_base import ToolError
    from .hooktools_relations import RelationTools
    from .hooktools_secrets import SecretTools
    from .hooktools_storage import StorageTools
    from .hooktools_unit import UnitTools
    from .model import Model

__all__ = ["Tools", "main"]


class Tools(RelationTools, UnitTools, SecretTools, StorageTools):
    """One method per hook tool: `relation-get` is Tools.relation_get(argv).

    The tools are split by what they touch (hooktools_relations.py, hooktools_unit.py,
    hooktools_secrets.py, hooktools_storage.py) over
    the shared context in hooktools_base.py.
    """


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    tool, args = argv[0], argv[1:]
    model = Model(os.environ["LOCALJUJU_MODEL"])
    unit = os.environ.get("JUJU_UNIT_NAME", "")
    ctx_path = model.root / "ctx" / (unit.replace("/", "-") + ".json")
    if not unit or not ctx_path.exists():
        print(f"ERROR {tool}: not running in a hook context", file=sys.stderr)
        return 1
    rc = 0
    tools = Tools(model, ctx_path)
    try:
        out = getattr(tools, tool.replace("-", "_"))(args)
        if out is not None:
            print(out)
    except ToolError as exc:
        print(f"ERROR {exc}", file=sys.stderr)
        rc = exc.rc
    finally:
        model.audit(tools.unit, tools.ctx.get("hook", ""), tool, args, rc)
    return rc


if __name__ == "__main__":
    sys.exit(main())
