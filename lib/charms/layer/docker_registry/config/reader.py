"""The typed reader that config and action parameters share, and the value checks it applies.

Every problem names the option and why, never the value: values may be secrets.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from charms.layer.docker_registry.config import tls

# A docker image reference: [host[:port]/]path[:tag][@digest], lower-case path; never a
# leading '-' (docker would read the reference as an option).
IMAGE_RE = re.compile(
    r"^(?:[a-zA-Z0-9][a-zA-Z0-9.-]*(?::[0-9]+)?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[\w][\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)
_FILE_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")  # tls-*-path file names
_CONTAINER_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")  # config and actions
# The only directories a tls-*-path may name a file in: the charm's own.
TLS_PATH_DIRS = ("/etc/docker/registry", "/etc/docker-registry")
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def is_container_name(text: str) -> bool:
    """A docker container name of at most 63 characters: ``registry-name`` and the ``name``
    parameter of the start and stop actions both take exactly this."""
    return bool(_CONTAINER_NAME_RE.match(text))


def is_host(text: str) -> bool:
    """An IPv4/IPv6 literal (IPv6 with or without brackets) or an RFC 1123 host name: nothing
    a path or a daemon.json entry derived from it could escape with (no '.', '..', '_',
    spaces or non-ASCII letters)."""
    literal = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        ipaddress.ip_address(literal)
        return True
    except ValueError:
        pass
    name = text[:-1] if text.endswith(".") else text
    return 0 < len(name) <= 253 and all(_HOST_LABEL.match(label) for label in name.split("."))


class Reader:
    """Typed access to raw config values that records problems instead of raising."""

    def __init__(self, config: Mapping[str, Any]):
        self.config = config
        self.problems: list[tuple[str, str]] = []

    def fail(self, option: str, why: str) -> None:
        self.problems.append((option, why))

    def text(self, option: str, default: str = "") -> str:
        value = self.config.get(option, default)
        if value is None:
            return default
        if not isinstance(value, str):
            self.fail(option, "must be a string")
            return default
        return value.strip()

    def flag(self, option: str, default: bool) -> bool:
        value = self.config.get(option, default)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.fail(option, "must be a boolean")
            return default
        return value

    def number(self, option: str, default: int, low: int, high: int) -> int:
        value = self.config.get(option, default)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(option, "must be an integer")
            return default
        if not low <= value <= high:
            self.fail(option, f"must be between {low} and {high}")
            return default
        return value

    def choice(
        self,
        option: str,
        default: str,
        choices: tuple[str, ...],
        fold: Callable[[str], str] = str.lower,
    ) -> str:
        value = self.text(option, default)
        folded = fold(value)
        if folded not in choices:
            self.fail(option, "must be one of " + ", ".join(choices))
            return default
        return folded

    def single_line(self, option: str, default: str = "") -> str:
        value = self.text(option, default)
        if "\n" in value or "\r" in value:
            self.fail(option, "must be a single line")
            return default
        return value

    def url(self, option: str, schemes: tuple[str, ...] = ("http", "https")) -> str:
        value = self.single_line(option)
        if not value:
            return ""
        why = url_problem(value, schemes)  # never quotes the value (it may hold credentials)
        if why:
            self.fail(option, why)
            return ""
        return value

    def base64_pem(self, option: str) -> str:
        value = self.text(option)
        if not value:
            return ""
        try:
            decoded = base64.b64decode("".join(value.split()), validate=True).decode()
        except (binascii.Error, ValueError, UnicodeDecodeError):
            self.fail(option, "is not valid base64")
            return ""
        if not tls.has_pem(decoded):
            self.fail(option, "does not decode to PEM data")
            return ""
        return decoded

    def path(self, option: str, default: str) -> str:
        value = self.single_line(option, default) or default
        if not value.startswith("/") or value.endswith("/"):
            self.fail(option, "must be an absolute file path")
            return default
        if "/../" in value + "/" or "/./" in value + "/" or "//" in value:
            self.fail(option, "must be a normalised absolute path")
            return default
        if value.rsplit("/", 1)[0] not in TLS_PATH_DIRS:
            self.fail(option, "must name a file directly in " + " or ".join(TLS_PATH_DIRS))
            return default
        if not _FILE_NAME_RE.match(value.rsplit("/", 1)[1]):
            # ':' and ',' would end docker's --volume value; a leading '.' or '-' hides the
            # file or reads as an option
            self.fail(option, "must be a file name of letters, digits, '.', '_' and '-'")
            return default
        return value


def url_problem(value: str, schemes: tuple[str, ...] = ("http", "https")) -> str:
    """Why ``value`` is not an acceptable URL, or "" when it is."""
    if any(c.isspace() for c in value):
        return "must be a URL without spaces"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in schemes:
        return "must be a URL starting with " + " or ".join(f"{s}://" for s in schemes)
    if not parts.hostname:
        return "must be a URL with a host name"
    return ""
