"""What every action shares: the runner, typed parameters, readiness and the registry client.

The action scripts in actions/ stay thin: they call ``run`` with an action body from
``lifecycle`` (start, stop), ``content`` (push, images, rmi, garbage-collect) or ``copies``
(mirror, import). ``run`` reports results with action-set and turns every failure into
action-fail, never a traceback. Status goes through ``status.decide``, as in hooks.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Callable

from charmhelpers.core import hookenv, unitdata
from charms.reactive import is_flag_set

from charms.layer.docker_registry import records
from charms.layer.docker_registry.config import credentials, reader, settings
from charms.layer.docker_registry.errors import RegistryCharmError
from charms.layer.docker_registry.host import files, paths, workload
from charms.layer.docker_registry.images import references, registry_api, transfer
from charms.layer.docker_registry.pipeline import clients, status

REPORTS_DIR = "/var/lib/docker-registry-charm/reports"  # mirror/import/images reports (JSON)
KEEP_REPORTS = 20


class ActionError(RegistryCharmError):
    """An action cannot do what was asked; the message says why."""

    def __init__(self, message: str, results: dict | None = None):
        super().__init__(message)
        self.results = results or {}


class Params(reader.Reader):
    """Action parameters, read as config is; the first bad one fails the action."""

    def fail(self, option: str, why: str) -> None:
        raise ActionError(f"{option}: {why}")

    def required(self, option: str) -> str:
        value = self.text(option)
        if not value:
            self.fail(option, "required")
        return value


def run(body: Callable[[Params], dict]) -> None:
    """Run an action body with its params; action-set its results or action-fail."""
    blocked = _blocked_reason()  # as the unit stood when the action began
    try:
        results = body(Params(hookenv.action_get() or {}))
        if results and blocked:  # the action worked; the operator still has something to fix
            results["unit-blocked"] = blocked
        if results:
            hookenv.action_set(results)
    except RegistryCharmError as exc:
        partial = getattr(exc, "results", None)
        if partial:  # e.g. mirror: the per-image summary of what did work
            hookenv.action_set(partial)
        hookenv.action_fail(str(exc))
    except Exception as exc:  # noqa: BLE001 - an action must never end in a traceback
        hookenv.log(f"action failed unexpectedly: {type(exc).__name__}", hookenv.ERROR)
        hookenv.action_fail(f"unexpected error ({type(exc).__name__}); see juju debug-log")
    finally:
        unitdata.kv().flush()


def registry_container() -> str:
    """This unit's registry container name (the default one when the config does not parse)."""
    try:
        name = settings.parse(config_in_effect()).registry_name
    except RegistryCharmError:
        name = settings.registry_name_or_default(hookenv.config())
    return paths.current().container_name(name)


def set_status(report: status.Report) -> None:
    hookenv.status_set(*status.decide(report))


def report_restarted(name: str) -> None:
    """The status after an action brought the registry back: what the last serving hook
    reported (scheme, proxied, notes) once it answers where that hook probed it."""

    try:
        settings.parse(config_in_effect())
    except RegistryCharmError:  # what serves is the last good config; the next hook blocks
        set_status(status.Report(waiting=["Started; the next hook checks the config."]))
        return
    endpoint = records.endpoint()
    answering = endpoint is not None and workload.wait_answering(
        endpoint.local_url, workload.START_BOUND
    )
    serving = records.serving()
    set_status(status.restarted(name, serving if answering else None))


def _status_message() -> str:
    try:
        state, message = hookenv.status_get()
    except Exception:  # noqa: BLE001 - status-get missing or failing: say what we know
        return "unknown status"
    return message or state or "unknown status"


def _blocked_reason() -> str:
    try:
        state, message = hookenv.status_get()
    except Exception:  # noqa: BLE001 - status-get missing or failing: nothing to add
        return ""
    return message if state == "blocked" else ""


def ready() -> clients.Endpoint:
    """Where the registry answers, as saved by the last successful hook. A unit blocked for
    another reason (a certificate that does not fit, a config it refused) still serves its
    last good registry there: an action works while it answers."""
    endpoint = records.endpoint()
    if (
        endpoint is None
        or is_flag_set(records.STOPPED_FLAG)
        or not (is_flag_set(records.CONFIGURED_FLAG) or clients.probe(endpoint.local_url))
    ):
        raise ActionError(f"the registry is not ready: {_status_message()}")
    return endpoint


def config_in_effect() -> dict:
    """The config with the credentials secret's keys in place, at the revision the last hook
    applied (an action does not move this unit to a newer one)."""
    raw = dict(hookenv.config())
    return credentials.effective_config(
        raw, credentials.read(raw.get(credentials.OPTION), refresh=False)
    )


def config() -> settings.Settings:
    try:
        return settings.parse(config_in_effect())
    except RegistryCharmError as exc:
        raise ActionError(f"invalid charm config: {exc}") from exc


def _credentials(config: settings.Settings) -> tuple[str, str]:
    if config.token_auth:
        raise ActionError(
            "the registry uses token auth (auth-token-*): this action has no credentials for it"
        )
    basic = config.basic_auth
    return (basic.user, basic.password) if basic else ("", "")


def transfer_target(endpoint: clients.Endpoint, config: settings.Settings) -> transfer.Target:

    user, password = _credentials(config)
    return transfer.Target(
        netloc=endpoint.netloc,
        tls=endpoint.url.startswith("https://"),
        ca_file=endpoint.ca_file,
        user=user,
        password=password,
        client_pair=endpoint.client_pair,
    )


def api(endpoint: clients.Endpoint, config: settings.Settings) -> registry_api.Registry:
    """A client for the registry API: its public URL, else this unit's own address."""

    user, password = _credentials(config)
    public = registry_api.Registry(
        endpoint.url, user, password, endpoint.ca_file, client_pair=endpoint.client_pair
    )
    try:
        public.ping()
        return public
    except registry_api.RegistryApiError as exc:
        if exc.status or not endpoint.local_url or endpoint.local_url == endpoint.url:
            raise
    # the public address (proxy, http-host) does not answer from here: our own unit does;
    # the certificate chain is still verified, its names may not include the local address
    local = registry_api.Registry(
        endpoint.local_url,
        user,
        password,
        endpoint.ca_file,
        check_hostname=False,
        client_pair=endpoint.client_pair,
    )
    local.ping()
    return local


def action_log(line: str) -> None:
    try:
        subprocess.run(["action-log", line], check=False, timeout=30, capture_output=True)
    except (OSError, subprocess.SubprocessError):
        hookenv.log(line)


def reference(text: str, name: str) -> references.Reference:
    try:
        return references.parse_reference(text)
    except references.TransferError as exc:
        raise ActionError(f"{name}: {exc}") from exc


def write_report(kind: str, body: dict, notes: list[str]) -> str:
    """The full report, JSON, under the reports directory (the last KEEP_REPORTS kept)."""

    directory = paths.current().path(REPORTS_DIR)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    ident = os.environ.get("JUJU_ACTION_UUID", "")[:8] or uuid.uuid4().hex[:8]
    path = directory / f"{kind}-{stamp}-{ident}.json"
    try:
        files.write_if_changed(path, json.dumps(body, indent=1) + "\n", 0o600)
        reports = sorted(directory.glob("*.json"), key=lambda p: p.stat().st_mtime)
        for old in reports[:-KEEP_REPORTS]:
            old.unlink(missing_ok=True)
    except OSError as exc:
        notes.append(f"could not write the report {path}: {exc.strerror or 'unwritable'}")
        return ""
    return str(path)


def bounded_json(rows: list[dict], limit: int) -> tuple[str, int]:
    """As many ``rows`` as fit in ``limit`` characters of JSON; (json, how many)."""
    out: list[str] = []
    size = 2
    for row in rows:
        text = json.dumps(row)
        if size + len(text) + 2 > limit:
            break
        out.append(text)
        size += len(text) + 2
    return "[" + ", ".join(out) + "]", len(out)


def bounded_lines(lines: list[str], limit: int) -> str:
    out: list[str] = []
    size = 0
    for index, line in enumerate(lines):
        if size + len(line) + 1 > limit - 80:
            out.append(f"... and {len(lines) - index} more (see the report file)")
            break
        out.append(line)
        size += len(line) + 1
    return "\n".join(out)
