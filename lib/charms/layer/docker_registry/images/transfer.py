"""Copy images into the registry with skopeo: push (from the local docker), mirror (registry to
registry, in parallel) and run_copies (the plans imagelists and importer make, for the mirror
and import actions). Image references are parsed in imagelists (no skopeo needed there).

Credentials go to skopeo in an authfile (mode 0600 in a private temporary directory removed
afterwards) and the CA in a cert dir: never in argv, logs, results or exceptions.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from charms.layer.docker_registry.errors import RegistryCharmError
from charms.layer.docker_registry.host import container
from charms.layer.docker_registry.images.plans import Item
from charms.layer.docker_registry.images.references import (
    Reference,
    TransferError,
    parse_reference,
)

SKOPEO = "skopeo"
_USERINFO_RE = re.compile(r"(\w+://)[^/@\s]+@")


# -- credentials ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """The registry images go to: its netloc, TLS and the charm's basic credentials."""

    netloc: str
    tls: bool = True
    ca_file: str = ""
    user: str = ""
    password: str = field(default="", repr=False)
    client_pair: tuple[str, str] | None = None  # (cert file, key file) for mutual TLS


@dataclass(frozen=True)
class SkopeoAuth:
    """Paths in a private directory: authfile (0600) and a cert dir with ca.crt (and, for
    mutual TLS, client.cert / client.key: containers/image reads that pair from a cert dir)."""

    authfile: str
    cert_dir: str
    tls: bool

    def dest_args(self) -> list[str]:
        return self._args("dest")

    def src_args(self) -> list[str]:
        """To read back from the registry (e.g. verify a copy)."""
        return self._args("src")

    def _args(self, side: str) -> list[str]:
        args = []
        if self.authfile:
            args += [f"--{side}-authfile", self.authfile]
        if not self.tls:
            args.append(f"--{side}-tls-verify=false")  # plain http registry
        elif self.cert_dir:
            args += [f"--{side}-cert-dir", self.cert_dir]
        return args


@contextmanager
def skopeo_auth(target: Target) -> Iterator[SkopeoAuth]:
    """A private temporary directory holding what skopeo needs; removed afterwards."""
    tmp = tempfile.mkdtemp(prefix="registry-auth-")  # mode 0700
    try:
        authfile = cert_dir = ""
        if target.password:
            token = base64.b64encode(f"{target.user}:{target.password}".encode()).decode()
            authfile = os.path.join(tmp, "auth.json")
            fd = os.open(authfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump({"auths": {target.netloc: {"auth": token}}}, f)
        if target.tls and (target.ca_file or target.client_pair):
            cert_dir = os.path.join(tmp, "certs")
            os.mkdir(cert_dir, 0o700)
            if target.ca_file:
                shutil.copyfile(target.ca_file, os.path.join(cert_dir, "ca.crt"))
            if target.client_pair:
                for source, name in zip(
                    target.client_pair, ("client.cert", "client.key"), strict=True
                ):
                    shutil.copyfile(source, os.path.join(cert_dir, name))
        yield SkopeoAuth(authfile, cert_dir, target.tls)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _scrub(text: str, target: Target) -> str:
    text = _USERINFO_RE.sub(r"\1***@", text)  # e.g. a proxy URL with its credentials
    if target.password:
        text = text.replace(target.password, "***")
        token = base64.b64encode(f"{target.user}:{target.password}".encode()).decode()
        text = text.replace(token, "***")
    return text


def skopeo_copy(
    source: str,
    dest: str,
    *,
    auth: SkopeoAuth,
    target: Target,
    src_args: Sequence[str] = (),
    extra: Sequence[str] = (),
    global_args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    timeout: float = 1800,
) -> str:
    """``skopeo copy source dest``; returns the digest of the manifest written."""
    _no_option(source, dest)
    with tempfile.TemporaryDirectory(prefix="skopeo-digest-") as tmp:
        digest_file = os.path.join(tmp, "digest")
        argv = [
            SKOPEO,
            *global_args,
            "copy",
            "--retry-times",
            "2",
            "--digestfile",
            digest_file,
            *auth.dest_args(),
            *src_args,
            *extra,
            source,
            dest,
        ]
        proc = _run(argv, f"copy to {dest}", timeout, env)
        if proc.returncode != 0:
            raise TransferError(_reason(proc, target))
        return Path(digest_file).read_text().strip() if Path(digest_file).exists() else ""


def skopeo_inspect_raw(
    source: str,
    *,
    target: Target,
    tls_verify: bool = True,
    env: dict[str, str] | None = None,
    timeout: float = 300,
) -> bytes:
    """The manifest ``source`` has, byte for byte (``skopeo inspect --raw``)."""
    _no_option(source)
    verify = [] if tls_verify else ["--tls-verify=false"]
    argv = [SKOPEO, "inspect", "--raw", "--retry-times", "2", *verify, source]
    proc = _run(argv, f"inspect {source}", timeout, env, text=False)
    if proc.returncode != 0:
        raise TransferError(_reason(proc, target))
    return proc.stdout


def _no_option(*references: str) -> None:
    # image names come from lists and archives: none may be taken for an option
    for reference in references:
        if reference.startswith("-"):
            raise TransferError("refusing an image name that starts with '-'")


def _run(
    argv: list[str], what: str, timeout: float, env: dict[str, str] | None, text: bool = True
) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            argv, capture_output=True, text=text, timeout=timeout, check=False, env=env
        )
    except FileNotFoundError as exc:
        raise TransferError("skopeo is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise TransferError(f"{what} timed out after {timeout:.0f}s") from exc


def _reason(proc: subprocess.CompletedProcess, target: Target) -> str:
    out = proc.stderr or proc.stdout or ""
    if isinstance(out, bytes):
        out = out.decode("utf-8", "replace")
    lines = out.strip().splitlines()
    return _short(_scrub(lines[-1] if lines else f"exit {proc.returncode}", target))


_PRESERVE: dict[str, bool] = {}


def supports_preserve_digests() -> bool:
    """Whether this skopeo has ``copy --preserve-digests`` (1.6 and later)."""
    if SKOPEO not in _PRESERVE:
        try:
            proc = subprocess.run(
                [SKOPEO, "copy", "--help"], capture_output=True, text=True, timeout=30, check=False
            )
            _PRESERVE[SKOPEO] = "--preserve-digests" in proc.stdout
        except (OSError, subprocess.SubprocessError):
            _PRESERVE[SKOPEO] = False
    return _PRESERVE[SKOPEO]


_PROXY_VARS = (
    ("JUJU_CHARM_HTTPS_PROXY", ("HTTPS_PROXY", "https_proxy")),
    ("JUJU_CHARM_HTTP_PROXY", ("HTTP_PROXY", "http_proxy")),
)


def proxy_env(netloc: str, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for skopeo: the model's proxy settings (juju-https-proxy, ...) as the
    variables skopeo reads, with this registry in NO_PROXY so pushes never go through them."""
    environ = dict(os.environ if environ is None else environ)
    env = dict(environ)
    for juju, names in _PROXY_VARS:
        value = environ.get(juju, "").strip()
        if value:
            for name in names:
                env[name] = value
    entries: list[str] = []
    for text in (
        environ.get("JUJU_CHARM_NO_PROXY", ""),
        environ.get("NO_PROXY", ""),
        environ.get("no_proxy", ""),
    ):
        entries += [e.strip() for e in text.split(",") if e.strip()]
    host = netloc.rsplit(":", 1)[0] if not netloc.endswith("]") else netloc
    for own in (host.strip("[]"), netloc):
        entries.append(own)
    unique = ",".join(dict.fromkeys(entries))
    env["NO_PROXY"] = env["no_proxy"] = unique
    return env


def _short(reason: str) -> str:
    reason = re.sub(r'^time="[^"]*" level=\w+ msg="?', "", reason).rstrip('"')
    return reason[:400]


# -- push -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PushResult:
    tag: str
    digest: str


def default_tag(image: str, netloc: str) -> str:
    return str(parse_reference(image).retarget(netloc))


def push(image: str, target: Target, *, tag: str = "", pull: bool = True) -> PushResult:
    """Push a local docker image (``docker pull`` it first when ``pull``) to the registry."""
    source = parse_reference(image)
    dest = parse_reference(tag) if tag else source.retarget(target.netloc)
    if not dest.host:  # a bare repo[:tag] goes to this registry
        dest = Reference(
            target.netloc, dest.path, dest.tag or ("" if dest.digest else "latest"), dest.digest
        )
    if dest.host != target.netloc:
        raise TransferError(f"tag: must start with this registry's address {target.netloc}/")
    if dest.digest and dest.tag:
        raise TransferError("tag: give a tag or a digest, not both")
    if pull:
        container.pull(str(source))
    local = container.image_id(str(source))
    if not local:
        raise TransferError(f"{source} is not in the local docker images (use pull=true)")
    # docker-daemon: accepts name:tag or an image id, not name@digest
    daemon_ref = local if source.digest or not source.tag else str(source)
    with skopeo_auth(target) as auth:
        digest = skopeo_copy(
            f"docker-daemon:{daemon_ref}", f"docker://{dest}", auth=auth, target=target
        )
    return PushResult(str(dest), digest)


# -- copies of planned images -------------------------------------------------------------------


def run_copies(
    items: list[Item],
    target: Target,
    *,
    concurrency: int = 4,
    src_args: Sequence[str] = (),
    global_args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    present: Callable[[Item], str] | None = None,
    log: Callable[[str], None] = lambda _line: None,
) -> list[Item]:
    """Copy every planned item, ``concurrency`` at a time; one failure does not stop the others.

    ``present(item)`` says why the item need not be copied ("" to copy it), e.g. the registry
    already has the same digest there. Each item's status, digest and reason are set in place;
    ``log`` gets ``[n/total] ...`` as each one ends.
    """
    todo = [item for item in items if item.status == "planned"]
    lock = threading.Lock()
    done = [0]

    def one(item: Item) -> None:
        start = time.monotonic()
        try:
            reason = ""
            if present is not None:
                try:
                    reason = present(item)
                except RegistryCharmError:
                    reason = ""  # cannot tell: copy it
            if reason:
                item.status, item.reason = "present", reason
            else:
                item.digest = skopeo_copy(
                    item.read,
                    f"docker://{item.dest}",
                    auth=auth,
                    target=target,
                    src_args=list(src_args),
                    extra=list(item.extra),
                    global_args=list(global_args),
                    env=env,
                )
                item.status = "copied"
        except RegistryCharmError as exc:
            item.status, item.reason = "failed", str(exc)
        item.seconds = time.monotonic() - start
        with lock:
            done[0] += 1
            log(f"[{done[0]}/{len(todo)}] {item.line()}")

    with skopeo_auth(target) as auth:
        if todo:
            with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(todo)))) as pool:
                list(pool.map(one, todo))
    return items
