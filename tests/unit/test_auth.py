"""auth: htpasswd lines made by the real `htpasswd` tool (apache2-utils), password on stdin."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from charms.layer.docker_registry.errors import InstallError
from charms.layer.docker_registry.host import auth

pytestmark = pytest.mark.skipif(not shutil.which("htpasswd"), reason="needs apache2-utils")

PASSWORD = "correct horse battery staple"


@pytest.fixture
def spy(monkeypatch):
    """Wraps subprocess.run: records every call's argv and stdin, then runs it for real."""
    calls: list[dict] = []
    real_run = subprocess.run

    def recording_run(args, *a, **kw):
        calls.append({"argv": list(args), "input": kw.get("input")})
        return real_run(args, *a, **kw)

    monkeypatch.setattr(subprocess, "run", recording_run)
    return calls


def htpasswd_file(tmp_path, content: str):
    path = tmp_path / "htpasswd"
    path.write_text(content)
    return path


def real_verify(path, user: str, password: str) -> bool:
    return (
        subprocess.run(
            ["htpasswd", "-v", "-i", str(path), user],
            input=password + "\n",
            capture_output=True,
            text=True,
            check=False,
        ).returncode
        == 0
    )


def test_new_line_is_a_bcrypt_hash_htpasswd_itself_verifies(tmp_path):
    line = auth.htpasswd_line("admin", PASSWORD)
    assert line.startswith("admin:$2y$04$")  # bcrypt, cost 4 (see auth's docstring)
    assert line.endswith("\n") and line.count("\n") == 1
    path = htpasswd_file(tmp_path, line)
    assert real_verify(path, "admin", PASSWORD)
    assert not real_verify(path, "admin", PASSWORD + "x")


def test_password_goes_on_stdin_never_in_argv(tmp_path, spy):
    existing = htpasswd_file(tmp_path, auth.htpasswd_line("admin", "old-password"))
    auth.htpasswd_line("admin", PASSWORD, existing)
    assert [c["argv"][1:3] for c in spy] == [["-n", "-i"], ["-v", "-i"], ["-n", "-i"]]
    for call in spy:
        assert not any(PASSWORD in arg or "old-password" in arg for arg in call["argv"])
    assert spy[-1]["input"] == PASSWORD + "\n"


def test_unchanged_password_reuses_the_existing_line_exactly(tmp_path):
    original = auth.htpasswd_line("admin", PASSWORD)
    existing = htpasswd_file(tmp_path, original)
    # bcrypt salts: hashing again would give another line, so equality proves reuse
    assert auth.htpasswd_line("admin", PASSWORD) != original
    assert auth.htpasswd_line("admin", PASSWORD, existing) == original


def test_a_hash_of_another_cost_that_verifies_is_kept(tmp_path):
    # e.g. made by an earlier charm with htpasswd's default cost 5: no rewrite, no restart
    cost5 = (
        subprocess.run(
            ["htpasswd", "-n", "-i", "-B", "admin"], input=PASSWORD, capture_output=True, text=True
        ).stdout.strip()
        + "\n"
    )
    assert cost5.startswith("admin:$2y$05$")
    existing = htpasswd_file(tmp_path, cost5)
    assert auth.htpasswd_line("admin", PASSWORD, existing) == cost5


def test_changed_password_gets_a_new_line_for_the_new_password(tmp_path):
    existing = htpasswd_file(tmp_path, auth.htpasswd_line("admin", "old-password"))
    line = auth.htpasswd_line("admin", PASSWORD, existing)
    assert line != existing.read_text()
    new = htpasswd_file(tmp_path, line)
    assert real_verify(new, "admin", PASSWORD)
    assert not real_verify(new, "admin", "old-password")


def test_changed_user_gets_a_new_line(tmp_path):
    existing = htpasswd_file(tmp_path, auth.htpasswd_line("admin", PASSWORD))
    line = auth.htpasswd_line("ops", PASSWORD, existing)
    assert line.startswith("ops:$2y$")


def test_existing_file_with_extra_users_is_replaced_by_one_line(tmp_path):
    content = auth.htpasswd_line("admin", PASSWORD) + auth.htpasswd_line("intruder", "x")
    existing = htpasswd_file(tmp_path, content)
    line = auth.htpasswd_line("admin", PASSWORD, existing)
    assert line.count("\n") == 1
    assert line.startswith("admin:$2y$")
    assert line not in content


def test_verifies_is_false_without_a_file(tmp_path):
    assert auth.verifies(tmp_path / "absent", "admin", PASSWORD) is False


def test_missing_tool_is_an_install_error(monkeypatch, tmp_path):
    monkeypatch.setattr(auth, "HTPASSWD", str(tmp_path / "no-htpasswd"))
    with pytest.raises(InstallError, match=r"htpasswd tool \(apache2-utils\) is not installed"):
        auth.htpasswd_line("admin", PASSWORD)


def test_htpasswd_refusing_the_input_is_an_install_error_without_the_password():
    # htpasswd rejects a user name holding ':'
    with pytest.raises(InstallError) as err:
        auth.htpasswd_line("ad:min", PASSWORD)
    assert str(err.value) == "htpasswd could not hash the basic auth password"
