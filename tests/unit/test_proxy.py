"""proxy: the services list published on `website` (haproxy wire format) and the proxy netloc."""

from __future__ import annotations

import itertools
import shutil
import subprocess

import pytest
import yaml

from charms.layer.docker_registry.pipeline import proxy

UNITS = {
    "docker-registry/2": "10.0.0.12",
    "docker-registry/10": "10.0.0.20",
    "docker-registry/3": "10.0.0.13",
}


def test_one_service_with_every_unit_as_a_server():
    (svc,) = proxy.services(UNITS, 5000, tls=False)
    assert svc["service_name"] == "docker-registry"
    assert svc["service_host"] == "0.0.0.0"
    assert svc["service_port"] == 5000
    assert [s[:3] for s in svc["servers"]] == [
        ["docker-registry-2", "10.0.0.12", 5000],
        ["docker-registry-3", "10.0.0.13", 5000],
        ["docker-registry-10", "10.0.0.20", 5000],
    ]


def test_primary_is_lowest_unit_number_not_string_order():
    # string order would put /10 before /2 (the reference charm's bug)
    assert sorted(UNITS)[0] == "docker-registry/10"
    assert proxy.primary(UNITS) == "docker-registry/2"
    (svc,) = proxy.services(UNITS, 5000, tls=False)
    backups = {s[0]: s[3].split()[-1] == "backup" for s in svc["servers"]}
    assert backups == {
        "docker-registry-2": False,
        "docker-registry-3": True,
        "docker-registry-10": True,
    }
    assert sum("backup" not in s[3] for s in svc["servers"]) == 1


def test_output_independent_of_which_unit_computes_it():
    """Any leader, any dict order: the same published data (no churn on leader change)."""
    outputs = {
        yaml.safe_dump(proxy.services(dict(order), 5000, tls=False))
        for order in itertools.permutations(UNITS.items())
    }
    assert len(outputs) == 1


def test_primary_moves_when_it_leaves():
    rest = {u: a for u, a in UNITS.items() if u != "docker-registry/2"}
    (svc,) = proxy.services(rest, 5000, tls=False)
    assert svc["servers"][0][0] == "docker-registry-3"
    assert "backup" not in svc["servers"][0][3]
    assert svc["servers"][1][3].endswith("backup")


def test_http_units_get_mode_http_and_an_http_health_check():
    (svc,) = proxy.services(UNITS, 5000, tls=False)
    opts = svc["service_options"]
    assert opts[:2] == ["mode http", "option httplog"]
    assert any(o.startswith("balance ") for o in opts)
    assert "option httpchk GET /v2/" in opts
    assert "http-check expect rstatus (200|401)" in opts
    assert all(" check" in f" {s[3]}" and "check-ssl" not in s[3] for s in svc["servers"])


def test_tls_units_get_tcp_passthrough_with_a_check_over_tls():
    (svc,) = proxy.services(UNITS, 5000, tls=True)
    opts = svc["service_options"]
    assert opts[:2] == ["mode tcp", "option tcplog"]
    assert "mode http" not in opts and "option httplog" not in opts
    assert all("check-ssl verify none" in s[3] for s in svc["servers"])


def test_units_requiring_client_certificates_get_a_tcp_connect_check():
    # haproxy has no client certificate: an HTTP check over TLS would mark every unit DOWN
    (svc,) = proxy.services(UNITS, 5000, tls=True, client_auth=True)
    opts = svc["service_options"]
    assert opts[:2] == ["mode tcp", "option tcplog"]
    assert not any("httpchk" in o or "http-check" in o for o in opts)
    assert all(s[3].startswith(proxy.CHECK) and "check-ssl" not in s[3] for s in svc["servers"])
    assert [s[3].endswith("backup") for s in svc["servers"]] == [False, True, True]


def test_client_auth_without_tls_changes_nothing():
    assert proxy.services(UNITS, 5000, tls=False, client_auth=True) == proxy.services(
        UNITS, 5000, tls=False
    )


def test_service_port_can_differ_from_registry_port():
    (svc,) = proxy.services(UNITS, 5000, tls=False, service_port=443)
    assert svc["service_port"] == 443
    assert {s[2] for s in svc["servers"]} == {5000}


def test_single_unit_is_primary_and_yaml_round_trips():
    services = proxy.services({"docker-registry/0": "fd00::1"}, 5000, tls=False)
    assert yaml.safe_load(yaml.safe_dump(services)) == services
    assert "backup" not in services[0]["servers"][0][3]
    assert services[0]["servers"][0][1] == "fd00::1"  # haproxy gets the raw address


def test_empty_units():
    assert proxy.primary({}) is None
    assert proxy.services({}, 5000, tls=False)[0]["servers"] == []


@pytest.mark.parametrize(
    ("address", "port", "expected"),
    [
        ("203.0.113.5", 5000, "203.0.113.5:5000"),
        ("fd00::5", 443, "[fd00::5]:443"),
        ("[fd00::5]", "443", "[fd00::5]:443"),
        ("proxy.example", 80, "proxy.example:80"),
    ],
)
def test_proxy_netloc_has_port_and_brackets_ipv6(address, port, expected):
    assert proxy.proxy_netloc(address, port) == expected


def test_units_on_shared_storage_are_all_active_and_balanced_request_by_request():
    # GIVEN units that share S3 or Swift (every unit holds every image)
    (svc,) = proxy.services(UNITS, 5000, tls=False, shared=True)
    # THEN none is a backup, requests are spread one by one, and a refused one tries another
    assert [s[3] for s in svc["servers"]] == [proxy.CHECK] * 3
    assert "balance roundrobin" in svc["service_options"]
    assert {"option redispatch", "retries 3"} <= set(svc["service_options"])


def test_tls_units_on_shared_storage_keep_their_check_over_tls():
    (svc,) = proxy.services(UNITS, 5000, tls=True, shared=True)
    assert [s[3] for s in svc["servers"]] == [f"{proxy.CHECK} check-ssl verify none"] * 3


def test_on_shared_storage_http_requests_a_restarting_unit_drops_are_retried_elsewhere():
    # GIVEN units on shared storage serving plain http (haproxy in mode http)
    (svc,) = proxy.services(UNITS, 5000, tls=False, shared=True)
    # THEN a GET or HEAD that a unit closes unanswered or leaves unanswered is replayed, on
    # another unit; an upload only when it was never sent (it is not idempotent)
    assert "retry-on conn-failure empty-response response-timeout" in svc["service_options"]
    assert "http-request disable-l7-retry unless METH_GET" in svc["service_options"]
    # AND with TLS passed through (mode tcp) haproxy cannot see requests: no l7 retries
    (tls,) = proxy.services(UNITS, 5000, tls=True, shared=True)
    assert not [o for o in tls["service_options"] if "retry-on" in o or "l7" in o]


@pytest.mark.skipif(not shutil.which("haproxy"), reason="haproxy not installed")
@pytest.mark.parametrize(
    ("tls", "client_auth", "shared"), list(itertools.product([False, True], repeat=3))
)
def test_haproxy_accepts_every_service_the_charm_publishes(tmp_path, tls, client_auth, shared):
    # the services as the haproxy charm splits and renders them (the local model's fake does it
    # the same way), checked by the real haproxy binary
    from tools.localjuju.fakes import haproxy as haproxy_charm

    services = proxy.services(UNITS, 5000, tls=tls, client_auth=client_auth, shared=shared)
    cfg = haproxy_charm.render({s["service_name"]: s for s in services}, "haproxy/0", "127.0.0.1")
    (tmp_path / "haproxy.cfg").write_text(cfg)
    check = subprocess.run(
        ["haproxy", "-c", "-f", str(tmp_path / "haproxy.cfg")], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    said = check.stdout + check.stderr
    # (the haproxy charm's own layout draws warnings of its own: a log option in a backend)
    assert not [line for line in said.splitlines() if "retr" in line or "l7" in line], said
