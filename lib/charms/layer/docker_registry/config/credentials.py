"""The ``credentials`` option: a Juju user secret whose keys stand in for secret options.

Each key of the secret is named after the option it supplies (``auth-basic-password``,
``storage-s3-secretkey``, ...). ``read`` is the Juju boundary (the ``secret-get`` hook tool,
charmhelpers has no wrapper for it); ``effective_config`` is pure: the config the charm
parses, with the secret's values in place of the options they stand in for.

The content goes from secret-get's stdout into memory and from there only where the plain
options would have gone (0600 files, relation data for clients): never into argv, logs,
status or exception messages.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from charms.layer.docker_registry.config import tls
from charms.layer.docker_registry.errors import ConfigError

OPTION = "credentials"
# the options a secret key may stand in for (the key has the option's name)
SECRET_KEYS = (
    "auth-basic-password",
    "cache-password",
    "caches-credentials",
    "storage-s3-accesskey",
    "storage-s3-secretkey",
    "storage-swift-password",
    "tls-key-blob",
)
TIMEOUT = 60


@dataclass(frozen=True)
class SecretRead:
    """What ``secret-get`` gave for the secret the option names: its content, or why not."""

    uri: str
    content: Mapping[str, str] | None = field(default=None, repr=False)
    problem: str = ""  # says why the secret cannot be read; never holds its content
    # keys the last revision this unit accepted supplied: one a new revision drops blocks
    # (`juju update-secret` replaces the whole content: a forgotten password would turn auth off)
    accepted: tuple[str, ...] = ()


def read(uri: str | None, refresh: bool) -> SecretRead | None:
    """The secret ``credentials`` names (None when the option is unset).

    ``refresh``: hooks follow the latest revision (and so get secret-changed for the next
    one); actions read the revision the last hook applied."""
    uri = (uri or "").strip()
    if not uri:
        return None
    argv = ["secret-get", uri, "--format", "json"] + (["--refresh"] if refresh else [])
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return SecretRead(uri, problem="the secret-get hook tool did not answer")
    if proc.returncode != 0:
        return SecretRead(uri, problem=_why_unreadable(proc.stderr))
    try:
        content = json.loads(proc.stdout)
    except ValueError:
        content = None
    if not isinstance(content, dict) or not all(isinstance(v, str) for v in content.values()):
        return SecretRead(uri, problem="secret-get returned something that is not key=value")
    return SecretRead(uri, content=dict(content))


def with_record(secret: SecretRead | None, record: Mapping[str, Any] | None) -> SecretRead | None:
    """``secret`` knowing the keys the unit last accepted from it (the kv ``record``)."""
    if secret is None or not record or record.get("uri") != secret.uri:
        return secret
    return dataclasses.replace(secret, accepted=tuple(record.get("keys") or ()))


def record_of(secret: SecretRead | None) -> dict[str, Any] | None:
    """What the unit kv keeps of an accepted secret: its URI and key names, never values."""
    if secret is None or secret.content is None:
        return None
    return {"uri": secret.uri, "keys": sorted(k for k in secret.content if k in SECRET_KEYS)}


def _why_unreadable(stderr: str) -> str:
    """secret-get's failure in the operator's words (its stderr holds no secret content)."""
    text = stderr.lower()
    if "permission denied" in text or "not granted" in text:
        return "the secret is not granted to this application (juju grant-secret)"
    if "not found" in text:
        return "the secret was not found (removed?)"
    return "secret-get failed"


def effective_config(config: Mapping[str, Any], secret: SecretRead | None) -> dict[str, Any]:
    """``config`` with the secret's keys in place of the options they stand in for.

    Raises ConfigError naming the option and the key: an unreadable secret, a key the charm
    does not read, or one also set as a plain option (which one wins would be a guess)."""
    merged = dict(config)
    if secret is None:
        return merged
    if secret.problem or secret.content is None:
        raise ConfigError([(OPTION, secret.problem or "the secret cannot be read")])
    problems: list[tuple[str, str]] = []
    unknown = sorted(k for k in secret.content if k not in SECRET_KEYS)
    if unknown:
        problems.append(
            (
                OPTION,
                f"the secret has key {unknown[0][:64]} which the charm does not read "
                f"(it reads {', '.join(SECRET_KEYS)})",
            )
        )
    for key in SECRET_KEYS:
        if key in secret.accepted and key not in secret.content:
            problems.append(
                (
                    OPTION,
                    f"the secret's new revision has no key {key} (the last one had): put it "
                    "back, or reset credentials and set it again to go on without it",
                )
            )
        if key not in secret.content:
            continue
        if str(config.get(key) or "").strip():
            problems.append(
                (OPTION, f"key {key} is in the secret and option {key} is set too: reset one")
            )
            continue
        merged[key] = _as_option(key, secret.content[key])
    if problems:
        raise ConfigError(problems)
    if not any(k in SECRET_KEYS for k in secret.content):
        raise ConfigError([(OPTION, "the secret has none of the keys the charm reads")])
    return merged


def _as_option(key: str, value: str) -> str:
    """The value as the option takes it: tls-key-blob is base64 of the PEM, and the secret
    may hold the PEM itself (``juju add-secret NAME tls-key-blob#file=registry.key``)."""
    if key == "tls-key-blob" and tls.has_pem(value):
        return base64.b64encode(value.encode()).decode()
    return value


def add_owned(content: Mapping[str, str], description: str) -> str:
    """A new secret this application owns, holding ``content``: its URI, "" when secret-add
    failed. The content goes in a 0600 file (mkstemp), never on secret-add's command line."""
    with tempfile.NamedTemporaryFile("w", prefix="secret-", suffix=".yaml") as file:
        json.dump(dict(content), file)  # JSON is YAML, which --file takes
        file.flush()
        argv = ["secret-add", "--description", description, "--file", file.name]
        try:
            proc = subprocess.run(
                argv, capture_output=True, text=True, timeout=TIMEOUT, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return ""
    uri = proc.stdout.strip()
    return uri if proc.returncode == 0 and uri.startswith("secret:") else ""


def read_owned(uri: str, key: str) -> str:
    """One key of a secret this application owns ("" when it cannot be read)."""
    secret = read(uri, refresh=False)
    return (secret.content or {}).get(key, "") if secret else ""
