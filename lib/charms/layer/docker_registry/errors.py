"""The library's small exception hierarchy. Messages never contain secret values."""


class RegistryCharmError(Exception):
    """Base class for expected, operator-facing failures."""


class ConfigError(RegistryCharmError):
    """Invalid charm config; ``problems`` is a list of (option, why) pairs."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = list(problems)
        super().__init__(self.summary())

    def summary(self) -> str:
        return "; ".join(f"{option}: {why}" for option, why in self.problems)


class DockerError(RegistryCharmError):
    """A docker CLI call failed (message says which call, never its secret inputs)."""


class InstallError(RegistryCharmError):
    """The engine, a tool or the registry image could not be installed."""
