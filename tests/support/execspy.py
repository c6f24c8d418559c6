"""An exec-level spy: every program a command starts, with its argv and environment, recorded
by strace as the kernel runs it (execve), following every child, so no process is too short to
be seen (a `ps` sampler can miss one that lives a millisecond).

    with exec_spy(juju) as spied:      # the juju CLI calls made in the block are traced
        juju.config(APP, {...})
    text = spied[0]                    # one line per execve: program, argv and environment

The local model runs each hook, and every hook tool and program a hook starts, as children of
the juju CLI call that fired it, so tracing those calls sees them all. Programs started by
dockerd (the registry process in its container) are not its children: `docker inspect` shows
their arguments and environment.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.support.prereq import missing


@contextlib.contextmanager
def exec_spy(juju) -> Iterator[list[str]]:
    strace = shutil.which("strace")
    if not strace:
        missing("no strace (scripts/setup-host.sh installs it)")
    with tempfile.TemporaryDirectory(prefix="exec-spy-") as tmp:
        logs, wrapper = Path(tmp) / "logs", Path(tmp) / "juju"
        logs.mkdir()
        # -f: every child; -v: argv and environment in full; -s: strings uncut;
        # --seccomp-bpf: only execve stops the traced processes
        wrapper.write_text(
            "#!/bin/sh\n"
            f"exec {strace} -f -qq -v -s 1048576 --seccomp-bpf -e trace=execve -e signal=none"
            f' -o "{logs}/exec.$$" {juju.cli_binary} "$@"\n'
        )
        wrapper.chmod(0o755)
        real, juju.cli_binary = juju.cli_binary, str(wrapper)
        spied: list[str] = []
        try:
            yield spied
        finally:
            juju.cli_binary = real
            spied.append("\n".join(p.read_text(errors="replace") for p in sorted(logs.iterdir())))
