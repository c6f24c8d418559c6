"""The one status ladder: blocked > waiting > maintenance > active (pure)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields


@dataclass
class Report:
    """Facts handlers found during one hook; the status is decided from them at its end."""

    blocked: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    maintenance: list[str] = field(default_factory=list)
    ready_at: str = ""  # netloc when the registry answered
    scheme: str = "http"
    proxied: bool = False
    notes: list[str] = field(default_factory=list)
    caches: list[str] = field(default_factory=list)  # upstream hosts whose cache serves
    caches_down: list[str] = field(default_factory=list)  # "quay.io unreachable", ...
    storage: str = ""  # "storage 93 % full" (datastore.py)
    role: str = ""  # replicated filesystem storage: "primary", "backup, in sync with …"

    def empty(self) -> bool:
        return not (self.blocked or self.waiting or self.maintenance or self.ready_at)

    def block(self, message: str) -> None:
        if message not in self.blocked:
            self.blocked.append(message)

    def wait(self, message: str) -> None:
        if message not in self.waiting:
            self.waiting.append(message)

    def busy(self, message: str) -> None:
        self.maintenance.append(message)

    def add(self, other: Report) -> None:
        """Take in facts decided elsewhere (e.g. those that hold once the registry serves)."""
        for message in other.blocked:
            self.block(message)
        for message in other.waiting:
            self.wait(message)
        self.maintenance += other.maintenance
        self.notes += other.notes
        self.caches += other.caches
        self.caches_down += other.caches_down
        self.storage = other.storage or self.storage
        if other.ready_at:
            self.ready_at, self.scheme, self.proxied = other.ready_at, other.scheme, other.proxied
        self.role = other.role or self.role

    def as_record(self) -> dict:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict | None) -> Report | None:
        if not isinstance(record, dict):
            return None
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in record.items() if k in known})


def busy(message: str) -> Report:
    """A step in progress, shown while it runs (installing, reconfiguring)."""
    return Report(maintenance=[message])


def stopped(name: str) -> Report:
    """The operator stopped the registry (the stop action): hooks leave it so."""
    return Report(blocked=[f"{name} container is stopped."])


def restarted(name: str, serving: Report | None) -> Report:
    """After an action started the registry again: the facts of the last hook that served it,
    once it answers; else a wait (the next hook decides from scratch)."""
    if serving is not None and serving.ready_at:
        return serving
    return Report(waiting=[f"Waiting for the {name} container to answer."])


def decide(report: Report) -> tuple[str, str]:
    if report.blocked:
        return "blocked", " ".join(report.blocked)
    if report.waiting:
        return "waiting", " ".join(report.waiting)
    if report.maintenance:
        return "maintenance", report.maintenance[-1]
    if report.ready_at:
        mode = report.scheme + (", proxied" if report.proxied else "")
        parts = [f"Ready at {report.ready_at} ({mode})"]
        if report.role:
            parts.append(report.role)
        if report.caches:
            parts.append("caches: " + ", ".join(report.caches))
        message = "; ".join(parts + report.caches_down + [report.storage] * bool(report.storage))
        message += "."
        if report.notes:
            message += " " + " ".join(report.notes)
        return "active", message
    return "waiting", "Waiting for the registry to start."
