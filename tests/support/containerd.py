"""A private containerd 1.6 (its own root, state and socket) for tests, driven with ctr.

It never touches the host's containerd: everything lives under the directory it is given.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CRI = "io.containerd.grpc.v1.cri"
NO_CRI = f'version = 2\ndisabled_plugins = ["{CRI}"]\n'


class Containerd:
    def __init__(self, base: Path, config: Path):
        self.base, self.config, self.socket = base, config, base / "containerd.sock"

    def ctr(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["ctr", "--address", str(self.socket), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def digest(self, ref: str, namespace: str = "default") -> str:
        """The manifest digest ctr lists for ``ref`` ("" when it has no such image); the CRI
        plugin keeps its images in the k8s.io namespace."""
        for line in self.ctr("-n", namespace, "images", "ls").stdout.splitlines():
            words = line.split()
            if words and words[0] == ref:
                return words[2]
        return ""

    def cri_pull(self, image: str) -> str:
        """Pull ``image`` the way the kubelet does, through the CRI plugin (ImageService
        PullImage over gRPC, with no credentials of its own: the plugin's registry config
        supplies them). Returns the image reference the plugin reports; raises grpc.RpcError.

        The request is encoded by hand (PullImageRequest{image: ImageSpec{image}}): two
        length-delimited fields, so the test needs no copy of the CRI protobuf files."""
        import grpc

        spec = _field(1, image.encode())
        request = _field(1, spec)
        with grpc.insecure_channel(f"unix://{self.socket}") as channel:
            pull = channel.unary_unary(
                "/runtime.v1.ImageService/PullImage",
                request_serializer=lambda raw: raw,
                response_deserializer=lambda raw: raw,
            )
            reply = pull(request, timeout=120)
        return _first_string(reply)

    def dump(self) -> str:
        """The configuration containerd runs with (`containerd config dump`)."""
        return subprocess.run(
            ["containerd", "--config", str(self.config), "config", "dump"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    def log(self) -> str:
        path = self.base / "containerd.log"
        return path.read_text()[-3000:] if path.exists() else ""


@contextmanager
def running(
    base: Path, config_text: str = NO_CRI, env: dict[str, str] | None = None
) -> Iterator[Containerd]:
    """containerd with ``config_text`` (its root, state and socket under ``base``); ``env``
    adds to its environment (SSL_CERT_FILE: the CAs it trusts as it would the system's)."""
    base.mkdir(parents=True, exist_ok=True)
    config = base / "config.toml"
    config.write_text(config_text)
    daemon = Containerd(base, config)
    with open(base / "containerd.log", "w") as log:
        process = subprocess.Popen(
            ["containerd", "--config", str(config), "--root", str(base / "root"),
             "--state", str(base / "state"), "--address", str(daemon.socket)],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
        )  # fmt: skip
    try:
        for _ in range(100):
            if daemon.socket.exists() or process.poll() is not None:
                break
            time.sleep(0.1)
        assert daemon.socket.exists(), f"containerd did not start:\n{daemon.log()}"
        yield daemon
    finally:
        process.terminate()
        process.wait(timeout=30)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _first_string(message: bytes) -> str:
    """Field 1 of a protobuf message whose first field is a string (PullImageResponse)."""
    if not message:
        return ""
    length, shift, i = 0, 0, 1
    while True:
        byte = message[i]
        length |= (byte & 0x7F) << shift
        i, shift = i + 1, shift + 7
        if not byte & 0x80:
            return message[i : i + length].decode()
