"""What a test needs from the machine, and what happens when it is not there: a skip on a
developer's machine, a failure naming the missing piece under CI (CI=true), so that CI never
passes by skipping what it was meant to prove."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def missing(what: str) -> NoReturn:
    """Skip because ``what`` (a sentence naming the missing piece) is not there; fail under CI."""
    if in_ci():
        pytest.fail(f"CI=true and {what}: this test must run in CI, not skip", pytrace=False)
    pytest.skip(what)
