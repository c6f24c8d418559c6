"""The one status ladder: blocked > waiting > maintenance > active (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field


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


def decide(report: Report) -> tuple[str, str]:
    if report.blocked:
        return "blocked", " ".join(report.blocked)
    if report.waiting:
        return "waiting", " ".join(report.waiting)
    if report.maintenance:
        return "maintenance", report.maintenance[-1]
    if report.ready_at:
        mode = report.scheme + (", proxied" if report.proxied else "")
        message = f"Ready at {report.ready_at} ({mode})."
        if report.notes:
            message += " " + " ".join(report.notes)
        return "active", message
    return "waiting", "Waiting for the registry to start."
