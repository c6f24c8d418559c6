"""The tests' own helper that finds the host's address on the docker bridge."""

from __future__ import annotations

import json
import subprocess

from tests.support import s3


def _fake_run(inspect: dict, ip_output: str):
    def run(argv, **kwargs):
        out = json.dumps(inspect) if argv[0] == "docker" else ip_output
        return subprocess.CompletedProcess(argv, 0, stdout=out, stderr="")

    return run


def test_gateway_comes_from_the_bridge_interface_when_ipam_lost_its_gateway(monkeypatch):
    # GIVEN dockerd reloaded: its IPAM config lists the subnet but no Gateway field
    inspect = {"IPAM": {"Config": [{"Subnet": "172.18.0.0/16"}]}, "Options": {}}
    ip_out = "4: docker0    inet 172.18.0.1/16 brd 172.18.255.255 scope global docker0\n"
    monkeypatch.setattr(subprocess, "run", _fake_run(inspect, ip_out))
    # THEN the address is read off the bridge interface itself
    assert s3.docker_bridge_gateway() == "172.18.0.1"


def test_gateway_falls_back_to_the_subnet_when_the_interface_is_not_visible(monkeypatch):
    inspect = {"IPAM": {"Config": [{"Subnet": "fd00::/64"}, {"Subnet": "172.19.0.0/16"}]}}
    monkeypatch.setattr(subprocess, "run", _fake_run(inspect, ""))
    assert s3.docker_bridge_gateway() == "172.19.0.1"
