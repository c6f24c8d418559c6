"""Other programs' files on the host: the charm never writes, overwrites or deletes a file it
did not write. (Other programs' containers: tests/integration/test_workload_engine.py, with a
real Docker engine.)"""

from __future__ import annotations

import pytest

from charms.layer.docker_registry.config import settings
from charms.layer.docker_registry.errors import RegistryCharmError
from charms.layer.docker_registry.pipeline import render
from tests.support import certs
from tests.unit.test_workload import _apply, make_desired

# where Debian's docker-registry package keeps its own config
DEBIAN_CONFIG = "/etc/docker-registry/config.yml"


def _tls() -> render.TlsMaterial:
    ca, ca_key, ca_cert = certs.make_ca()
    server = certs.make_server_cert(ca_key, ca_cert, "10.0.0.1", ["10.0.0.1"])
    return render.TlsMaterial(cert=server.cert, key=server.key, ca=ca.cert)


def test_a_tls_path_naming_another_programs_file_is_refused_and_the_file_kept(
    config, sandbox, world
):
    # GIVEN Debian's registry config where tls-ca-path points, and a serving registry
    foreign = sandbox.path(DEBIAN_CONFIG)
    foreign.parent.mkdir(parents=True)
    foreign.write_text("version: 0.1\n")
    foreign.chmod(0o640)
    tls = _tls()
    _, managed = _apply(make_desired(config, sandbox, tls=tls), sandbox)
    converged = len(world.converged)
    # WHEN tls-ca-path names it
    hostile = make_desired(config, sandbox, tls=tls, **{"tls-ca-path": DEBIAN_CONFIG})
    with pytest.raises(RegistryCharmError) as err:
        _apply(hostile, sandbox, managed_files=managed)
    # THEN the unit blocks naming the option; the file and the registry are as they were
    assert str(err.value).startswith(f"tls-ca-path: {DEBIAN_CONFIG} exists and was not written")
    assert foreign.read_text() == "version: 0.1\n"
    assert foreign.stat().st_mode & 0o777 == 0o640
    assert len(world.converged) == converged
    # AND WHEN the option is reset THEN nothing removes that file (it was never the charm's)
    _apply(make_desired(config, sandbox, tls=tls), sandbox, managed_files=managed)
    assert foreign.read_text() == "version: 0.1\n"


def test_a_file_the_charm_wrote_at_a_tls_path_is_its_own_to_replace_and_remove(
    config, sandbox, world
):
    # GIVEN the charm wrote the CA at a tls-ca-path in /etc/docker-registry
    tls = _tls()
    wanted = make_desired(
        config, sandbox, tls=tls, **{"tls-ca-path": "/etc/docker-registry/a.crt"}
    )
    _, managed = _apply(wanted, sandbox)
    _, managed = _apply(wanted, sandbox, managed_files=managed)  # a later hook: same file
    # WHEN the option is reset THEN the charm removes what it wrote
    _, managed = _apply(make_desired(config, sandbox, tls=tls), sandbox, managed_files=managed)
    assert not sandbox.path("/etc/docker-registry/a.crt").exists()


@pytest.mark.parametrize("name", ["a:b.crt", "a,b.crt", ".hidden.crt", "-x.crt"])
def test_a_tls_path_docker_would_split_or_hide_is_refused(config, name):
    # "a:b.crt" ended docker's --volume value: the container did not start and the file stayed
    with pytest.raises(settings.ConfigError) as err:
        settings.parse({**config, "tls-cert-path": f"/etc/docker-registry/{name}"})
    assert dict(err.value.problems)["tls-cert-path"].startswith("must be a file name of")
