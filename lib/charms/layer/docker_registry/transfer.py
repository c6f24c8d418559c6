"""Copy images into the registry with skopeo: push (from the local docker) and mirror
(registry to registry, in parallel).

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
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from charms.layer.docker_registry import container
from charms.layer.docker_registry.errors import RegistryCharmError

SKOPEO = "skopeo"
DOCKER_HUB_HOSTS = ("docker.io", "index.docker.io", "registry-1.docker.io")
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_HOST_RE = re.compile(r"^(?:[a-zA-Z0-9.-]+|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$")


class TransferError(RegistryCharmError):
    """A push or copy failed; the message names the image and skopeo's/docker's reason."""


@dataclass(frozen=True)
class Reference:
    """A parsed image reference: [host[:port]/]path[:tag][@digest]."""

    host: str  # "" when none was given (Docker Hub)
    path: str
    tag: str = ""
    digest: str = ""

    @property
    def registry_path(self) -> str:
        """The path without its source registry (Docker Hub's library/ dropped)."""
        if self.host in ("", *DOCKER_HUB_HOSTS) and self.path.startswith("library/"):
            return self.path[len("library/") :]
        return self.path

    def __str__(self) -> str:
        out = f"{self.host}/{self.path}" if self.host else self.path
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    def retarget(self, netloc: str) -> Reference:
        """The same image in the registry at ``netloc``, keeping its repository path.

        Tag kept; a digest-only reference stays a digest reference (pushed by digest);
        no tag and no digest means latest, as docker does.
        """
        tag = self.tag or ("" if self.digest else "latest")
        return Reference(netloc, self.registry_path, tag, "" if tag else self.digest)


def parse_reference(text: str) -> Reference:
    """Parse an image reference the way docker does; TransferError says what is wrong."""
    ref = (text or "").strip()
    if not ref or any(c.isspace() for c in ref):
        raise TransferError(f"not an image reference: {ref[:200]!r}")
    rest, _, digest = ref.partition("@")
    if digest and not _DIGEST_RE.match(digest):
        raise TransferError(f"{ref[:200]}: the digest must be sha256:<64 hex digits>")
    host = ""
    first, sep, remainder = rest.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        if not _HOST_RE.match(first):
            raise TransferError(f"{ref[:200]}: bad registry host {first[:100]!r}")
        host, rest = first, remainder
    path, tag = rest, ""
    if ":" in rest.rsplit("/", 1)[-1]:
        path, _, tag = rest.rpartition(":")
        if not _TAG_RE.match(tag):
            raise TransferError(f"{ref[:200]}: bad tag {tag[:130]!r}")
    if not _PATH_RE.match(path) or len(path) > 255:
        raise TransferError(
            f"{ref[:200]}: bad repository path (lower-case letters, digits, . _ - and /)"
        )
    return Reference(host, path, tag, digest)


def parse_image_list(text: str) -> list[str]:
    """Images from a list: newline/space separated, # comments and blank lines skipped,
    duplicates dropped (order kept)."""
    out: list[str] = []
    for line in (text or "").splitlines():
        for word in line.split("#", 1)[0].split():
            if word not in out:
                out.append(word)
    return out


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
    src_args: list[str] = (),
    extra: list[str] = (),
    timeout: float = 1800,
) -> str:
    """``skopeo copy source dest``; returns the digest of the manifest written."""
    with tempfile.TemporaryDirectory(prefix="skopeo-digest-") as tmp:
        digest_file = os.path.join(tmp, "digest")
        argv = [
            SKOPEO,
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
        try:
            proc = subprocess.run(
                argv, capture_output=True, text=True, timeout=timeout, check=False
            )
        except FileNotFoundError as exc:
            raise TransferError("skopeo is not installed") from exc
        except subprocess.TimeoutExpired as exc:
            raise TransferError(f"copy to {dest} timed out after {timeout:.0f}s") from exc
        if proc.returncode != 0:
            lines = (proc.stderr or proc.stdout).strip().splitlines()
            reason = _scrub(lines[-1] if lines else f"exit {proc.returncode}", target)
            raise TransferError(_short(reason))
        return Path(digest_file).read_text().strip() if Path(digest_file).exists() else ""


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


# -- mirror -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MirrorResult:
    source: str
    target: str
    ok: bool
    digest: str = ""
    error: str = ""
    seconds: float = 0.0

    def line(self) -> str:
        if self.ok:
            return f"ok {self.source} -> {self.target} {self.digest} ({self.seconds:.1f}s)"
        return f"FAILED {self.source}: {self.error}"


def mirror(
    images: list[str],
    target: Target,
    *,
    concurrency: int = 4,
    src_tls_verify: bool = True,
    all_platforms: bool = False,
    log: Callable[[str], None] = lambda _line: None,
) -> list[MirrorResult]:
    """Copy each image registry to registry keeping its repository path; one failure does not
    stop the others. Results in the order given; ``log`` gets one line per image as it ends."""
    src_args = [] if src_tls_verify else ["--src-tls-verify=false"]
    extra = ["--all"] if all_platforms else []
    lock = threading.Lock()

    def one(image: str) -> MirrorResult:
        start = time.monotonic()
        dest = ""
        try:
            source = parse_reference(image)
            dest = str(source.retarget(target.netloc))
            digest = skopeo_copy(
                f"docker://{source}",
                f"docker://{dest}",
                auth=auth,
                target=target,
                src_args=src_args,
                extra=extra,
            )
            result = MirrorResult(image, dest, True, digest, "", time.monotonic() - start)
        except RegistryCharmError as exc:
            result = MirrorResult(image, dest, False, "", str(exc), time.monotonic() - start)
        with lock:
            log(result.line())
        return result

    with skopeo_auth(target) as auth:
        if not images:
            return []
        with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(images)))) as pool:
            return list(pool.map(one, images))
