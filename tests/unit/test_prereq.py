"""tests/support/prereq.missing: a skip for a developer, a failure naming the piece under CI."""

import pytest

from tests.support.prereq import missing


def test_a_missing_piece_skips_outside_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"no Python 3\.10"):
        missing("no Python 3.10")


def test_a_missing_piece_fails_ci_naming_it(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"CI=true and no Python 3\.10"):
        missing("no Python 3.10")
