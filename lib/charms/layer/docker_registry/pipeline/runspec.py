"""What the charm runs: the container's run spec, the record of it the unit kv keeps, and the
host files it mounts (plain values; ``host.container`` turns them into docker calls).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from charms.layer.docker_registry.host import paths

CONFIG_FILE = f"{paths.CONFIG_DIR}/config.yml"
ENV_FILE = f"{paths.CONFIG_DIR}/registry.env"
HASH_LABEL = "docker-registry.config-hash"
PRIVATE, PUBLIC = 0o600, 0o644
# The image's own entrypoint and command (upstream registry:2 and the image this project
# builds alike): ENTRYPOINT ["/entrypoint.sh"], CMD ["/etc/docker/registry/config.yml"].
IMAGE_ENTRYPOINT, IMAGE_CMD = "/entrypoint.sh", CONFIG_FILE


@dataclass(frozen=True)
class HostFile:
    path: str  # absolute path as the registry sees it (also the container mount target)
    content: str = field(repr=False)
    mode: int = PRIVATE
    mount: bool = True
    option: str = ""  # the option that names its path ("" for the charm's own file names)


# Exports each NAME=value line of the env file as it is (no shell evaluation of the value),
# then runs the image's entrypoint with the container's arguments.
_SOURCE_ENV = (
    'while IFS= read -r line; do case "$line" in *=*) export "$line" ;; esac; done < {path}; '
    f'exec {IMAGE_ENTRYPOINT} "$@"'
)


def with_env_file(env_file: str, command: list[str]) -> tuple[list[str], list[str]]:
    """(`docker run` options, arguments after the image) that run ``command`` (the image's
    default command when empty) with the variables of the host's ``env_file`` ("" for none)
    in its environment. Registry 2.8 reads its egress proxy (credentials and all) only from
    its environment: the file is mounted read-only and read by the container's own shell, so
    the values are in no process argument and not in the container's config (`docker
    inspect`), where `--env`/`--env-file` would put them."""
    if not env_file:
        return [], command
    script = _SOURCE_ENV.format(path=ENV_FILE)
    options = ["--volume", f"{env_file}:{ENV_FILE}:ro", "--entrypoint", "/bin/sh"]
    return options, ["-c", script, "sh", *(command or [IMAGE_CMD])]


@dataclass(frozen=True)
class RunSpec:
    name: str
    image: str
    ports: tuple[tuple[str, int, int], ...]  # (bind address or "", host port, container port)
    mounts: tuple[tuple[str, str], ...]  # (host path, container path), read-only unless storage
    env_file: str = ""
    storage_mount: tuple[str, str] | None = None
    log_driver: str = ""  # "" = the engine's default; journald: tagged with the container name

    def volumes(self) -> list[str]:
        """``--volume`` values: config files read-only, the storage directory writable."""
        out = [f"{host_path}:{container_path}:ro" for host_path, container_path in self.mounts]
        if self.storage_mount:
            out.append(f"{self.storage_mount[0]}:{self.storage_mount[1]}")
        return out

    def argv(self, labels: dict[str, str]) -> list[str]:
        """`docker run` arguments; labels carry the config hash."""
        argv = ["run", "--detach", "--name", self.name, "--restart", "unless-stopped"]
        for key, value in sorted(labels.items()):
            argv += ["--label", f"{key}={value}"]
        for bind, host_port, container_port in self.ports:
            prefix = f"{bind}:" if bind else ""
            if ":" in bind:  # IPv6 literal
                prefix = f"[{bind}]:"
            argv += ["--publish", f"{prefix}{host_port}:{container_port}"]
        for volume in self.volumes():
            argv += ["--volume", volume]
        options, command = with_env_file(self.env_file, [])
        argv += options
        if self.log_driver:
            argv += ["--log-driver", self.log_driver, "--log-opt", f"tag={self.name}"]
        return [*argv, self.image, *command]

    def as_record(self) -> dict:
        """JSON-safe form for the unit kv (holds no secret: they live in mounted files)."""
        return {
            "name": self.name,
            "image": self.image,
            "ports": [list(p) for p in self.ports],
            "mounts": [list(m) for m in self.mounts],
            "env_file": self.env_file,
            "storage_mount": list(self.storage_mount) if self.storage_mount else None,
            "log_driver": self.log_driver,
        }

    @classmethod
    def from_record(cls, record: dict) -> RunSpec:
        storage = record.get("storage_mount")
        return cls(
            name=record["name"],
            image=record["image"],
            ports=tuple((str(b), int(h), int(c)) for b, h, c in record.get("ports", [])),
            mounts=tuple((str(h), str(c)) for h, c in record.get("mounts", [])),
            env_file=record.get("env_file", ""),
            storage_mount=(str(storage[0]), str(storage[1])) if storage else None,
            log_driver=str(record.get("log_driver", "")),
        )


@dataclass(frozen=True)
class ContainerRun:
    """A run spec and the config hash its container's label carries: what the charm ran."""

    spec: RunSpec
    config_hash: str

    def argv(self) -> list[str]:
        return self.spec.argv({HASH_LABEL: self.config_hash})

    def as_record(self) -> dict:
        return {"spec": self.spec.as_record(), "hash": self.config_hash}

    @classmethod
    def from_record(cls, record: dict | None) -> ContainerRun | None:
        """None for no record, or one in a form this charm revision does not know."""
        try:
            return cls(RunSpec.from_record(record["spec"]), str(record["hash"]))  # type: ignore[index]
        except (KeyError, TypeError, ValueError):
            return None
