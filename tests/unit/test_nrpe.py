"""nrpe: the check definition and the shipped check script run against real local servers."""

from __future__ import annotations

import base64
import http.server
import shlex
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from charms.layer.docker_registry.host import nrpe
from charms.layer.docker_registry.host.paths import Host
from tests.support import certs
from tests.support.net import free_port

USER, PASSWORD = "admin", "s3cret pass:word"


def _handler(status: int, require_auth: bool):
    expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            code = status
            if require_auth:
                code = 200 if self.headers.get("Authorization") == expected else 401
            if self.path != "/v2/":
                code = 404
            self.send_response(code)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    return Handler


@contextmanager
def server(
    status=200, require_auth=False, tls: certs.Pair | None = None, tmp=None, client_ca: str = ""
) -> Iterator:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(status, require_auth))
    if tls:
        (tmp / "srv.crt").write_text(tls.cert)
        (tmp / "srv.key").write_text(tls.key)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tmp / "srv.crt", tmp / "srv.key")
        if client_ca:  # like the registry with tls-client-auth: client certificates required
            (tmp / "clientca.crt").write_text(client_ca)
            ctx.load_verify_locations(tmp / "clientca.crt")
            ctx.verify_mode = ssl.CERT_REQUIRED
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def script(tmp_path) -> Path:
    nrpe.install(Host(sandbox=str(tmp_path / "root")))
    path = tmp_path / "root" / nrpe.SCRIPT_PATH.lstrip("/")
    assert path.stat().st_mode & 0o777 == 0o755
    return path


def run_check(script: Path, definition: nrpe.CheckDefinition) -> tuple[int, str]:
    argv = shlex.split(definition.check_cmd)
    argv[0] = str(script)
    proc = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=30)
    assert proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, proc.stdout  # nagios: one line
    return proc.returncode, lines[0]


# ---------------------------------------------------------------- definition


def test_definition_http():
    d = nrpe.check_definition("http", "10.0.0.5", 5000)
    assert d.shortname == "docker_registry"
    assert shlex.split(d.check_cmd) == [nrpe.SCRIPT_PATH, "--url", "http://10.0.0.5:5000"]
    assert "10.0.0.5:5000" in d.description


def test_definition_https_uses_ca_file_and_brackets_ipv6():
    d = nrpe.check_definition("https", "fd00::5", 5000, "/etc/docker/registry/ca.crt")
    assert shlex.split(d.check_cmd)[1:] == [
        "--url",
        "https://[fd00::5]:5000",
        "--ca-file",
        "/etc/docker/registry/ca.crt",
    ]


def test_the_password_given_to_the_check_stays_out_of_its_command(tmp_path):
    # GIVEN the charm's basic-auth credentials handed to the nrpe check
    host = Host(sandbox=str(tmp_path))
    check = nrpe.configure(host, (USER, PASSWORD), "10.0.0.5", 5000, "http", "", None)
    # THEN the command (argv of every nrpe run, and its command file) names only the file ...
    command_file = tmp_path / "etc/nagios/nrpe.d/check_docker_registry.cfg"
    cred = str(host.path(nrpe.CREDENTIALS_PATH))
    assert shlex.split(check.check_cmd)[-2:] == ["--credentials-file", cred]
    for text in (check.check_cmd, command_file.read_text(), nrpe.monitors(check)):
        assert PASSWORD not in text and base64.b64encode(PASSWORD.encode()).decode() not in text
    # ... which holds the password the check logs in with
    assert Path(cred).read_text() == f"{USER}:{PASSWORD}\n"


def test_definition_rejects_other_schemes():
    with pytest.raises(ValueError):
        nrpe.check_definition("ftp", "10.0.0.5", 5000)


# ---------------------------------------------------------------- install


def test_install_writes_script_and_private_credentials_then_removes_them(tmp_path):
    host = Host(sandbox=str(tmp_path))
    assert nrpe.install(host, (USER, PASSWORD), owner="no-such-user-here")
    cred = tmp_path / nrpe.CREDENTIALS_PATH.lstrip("/")
    assert cred.read_text() == f"{USER}:{PASSWORD}\n"
    assert cred.stat().st_mode & 0o777 == 0o600
    assert not nrpe.install(host, (USER, PASSWORD), owner="no-such-user-here")  # idempotent
    assert nrpe.install(host, None)
    assert not cred.exists()
    assert (tmp_path / nrpe.SCRIPT_PATH.lstrip("/")).read_text() == nrpe.CHECK_SCRIPT


# ---------------------------------------------------------------- the script, for real


@pytest.mark.parametrize(
    ("status", "rc", "word"),
    [(200, 0, "OK"), (401, 0, "OK"), (500, 2, "CRITICAL"), (404, 2, "CRITICAL")],
)
def test_script_http_status(script, status, rc, word):
    with server(status) as port:
        code, line = run_check(script, nrpe.check_definition("http", "127.0.0.1", port))
    assert (code, line.split(":")[0]) == (rc, word), line
    assert str(status) in line


def test_script_closed_port_is_critical(script):
    code, line = run_check(script, nrpe.check_definition("http", "127.0.0.1", free_port()))
    assert code == 2
    assert line.startswith("CRITICAL:")
    assert "refused" in line.lower()


def test_script_sends_credentials_from_file(script, tmp_path):
    cred = tmp_path / "cred"
    cred.write_text(nrpe.credentials_content(USER, PASSWORD))
    cred.chmod(0o600)
    with server(require_auth=True) as port:
        anon = run_check(script, nrpe.check_definition("http", "127.0.0.1", port))
        good = run_check(
            script,
            nrpe.check_definition("http", "127.0.0.1", port, credentials_file=str(cred)),
        )
        cred.write_text(nrpe.credentials_content(USER, "wrong"))
        bad = run_check(
            script,
            nrpe.check_definition("http", "127.0.0.1", port, credentials_file=str(cred)),
        )
    assert anon[0] == 0 and "401" in anon[1]
    assert good[0] == 0 and "200" in good[1]
    assert bad[0] == 2 and "rejected" in bad[1]
    missing = run_check(
        script, nrpe.check_definition("http", "127.0.0.1", 1, credentials_file="/nonexistent")
    )
    assert missing[0] == 2 and "credentials" in missing[1]


def test_script_https_verifies_against_the_ca(script, tmp_path):
    ca, ca_key, ca_cert = certs.make_ca()
    pair = certs.make_server_cert(ca_key, ca_cert, "127.0.0.1", ["127.0.0.1"])
    ca_file = tmp_path / "ca.crt"
    ca_file.write_text(ca.cert)
    other, _, _ = certs.make_ca("other-ca")
    other_file = tmp_path / "other.crt"
    other_file.write_text(other.cert)
    with server(401, tls=pair, tmp=tmp_path) as port:
        ok = run_check(script, nrpe.check_definition("https", "127.0.0.1", port, str(ca_file)))
        wrong_ca = run_check(
            script, nrpe.check_definition("https", "127.0.0.1", port, str(other_file))
        )
        plain = run_check(script, nrpe.check_definition("http", "127.0.0.1", port))
    assert ok[0] == 0 and "401" in ok[1], ok
    assert wrong_ca[0] == 2 and "CERTIFICATE_VERIFY_FAILED" in wrong_ca[1], wrong_ca
    assert plain[0] == 2, plain  # plain http against a TLS registry is not OK


def test_install_writes_the_client_certificate_privately_then_removes_it(tmp_path):
    host = Host(sandbox=str(tmp_path))
    assert nrpe.install(host, client=("CERT\n", "KEY\n"), owner="no-such-user-here")
    cert = tmp_path / nrpe.CLIENT_CERT_PATH.lstrip("/")
    key = tmp_path / nrpe.CLIENT_KEY_PATH.lstrip("/")
    assert (cert.read_text(), key.read_text()) == ("CERT\n", "KEY\n")
    assert key.stat().st_mode & 0o777 == 0o600
    assert not nrpe.install(host, client=("CERT\n", "KEY\n"), owner="no-such-user-here")
    assert nrpe.install(host)
    assert not cert.exists() and not key.exists()


def test_definition_with_a_client_certificate_only_for_https():
    pair = nrpe.client_files(Host())
    assert pair == (nrpe.CLIENT_CERT_PATH, nrpe.CLIENT_KEY_PATH)
    https = nrpe.check_definition("https", "10.0.0.1", 5000, "/ca.crt", client_pair=pair)
    assert f"--client-cert {nrpe.CLIENT_CERT_PATH}" in https.check_cmd
    assert f"--client-key {nrpe.CLIENT_KEY_PATH}" in https.check_cmd
    http = nrpe.check_definition("http", "10.0.0.1", 5000, client_pair=pair)
    assert "--client-cert" not in http.check_cmd


def test_script_presents_the_client_certificate_to_a_mutual_tls_registry(tmp_path):
    ca, ca_key, ca_cert = certs.make_ca()
    pair = certs.make_server_cert(ca_key, ca_cert, "127.0.0.1", ["127.0.0.1"])
    client = certs.make_client_cert(ca_key, ca_cert)
    host = Host(sandbox=str(tmp_path / "root"))
    nrpe.install(host, client=(client.cert, client.key), owner="nobody-x")
    script = host.path(nrpe.SCRIPT_PATH)
    ca_file = tmp_path / "ca.crt"
    ca_file.write_text(ca.cert)

    def definition(port, with_cert):
        pair = nrpe.client_files(host) if with_cert else None
        return nrpe.check_definition("https", "127.0.0.1", port, str(ca_file), client_pair=pair)

    with server(401, tls=pair, tmp=tmp_path, client_ca=ca.cert) as port:
        with_cert = run_check(script, definition(port, True))
        without = run_check(script, definition(port, False))
    assert with_cert[0] == 0 and "401" in with_cert[1], with_cert
    assert without[0] == 2 and "CRITICAL" in without[1], without


def test_script_with_an_unreadable_client_certificate_is_critical(script, tmp_path):
    pair = ("/no/c.cert", "/no/c.key")
    check = nrpe.check_definition("https", "127.0.0.1", 1, str(tmp_path / "ca"), client_pair=pair)
    ca, _, _ = certs.make_ca()
    (tmp_path / "ca").write_text(ca.cert)
    rc, line = run_check(script, check)
    assert rc == 2 and "client certificate" in line


# ---------------------------------------------------------------- the check, in process


def test_check_refuses_a_url_that_is_not_http(capsys):
    from charms.layer.docker_registry.host import nrpe_check

    assert nrpe_check.main(["--url", "file:///etc/passwd"]) == 2
    assert capsys.readouterr().out == "CRITICAL: file:///etc/passwd is not an http(s) URL\n"


def test_check_says_when_it_cannot_read_its_credentials(capsys, tmp_path):
    from charms.layer.docker_registry.host import nrpe_check

    missing = tmp_path / "nope"
    assert (
        nrpe_check.main(["--url", "http://127.0.0.1:9", "--credentials-file", str(missing)]) == 2
    )
    assert capsys.readouterr().out.startswith("CRITICAL: cannot read the credentials file")


def test_check_reports_a_refused_connection(capsys):
    from charms.layer.docker_registry.host import nrpe_check

    assert nrpe_check.main(["--url", "http://127.0.0.1:9", "--timeout", "2"]) == 2
    assert capsys.readouterr().out.startswith("CRITICAL: http://127.0.0.1:9/v2/")
