"""Smoke: the built charm's real hooks, one unit, registry image from the resource."""

import urllib.error


def test_deploy_one_unit_answers(juju, charm_dir, registry_image_tar, helpers):
    # GIVEN the built charm and the offline registry image as the registry-image resource
    # WHEN one unit is deployed
    helpers.deploy_registry(juju, charm_dir, registry_image_tar, "docker-registry")
    # THEN it reports Ready at its own address and the registry answers there
    unit = helpers.unit_of(juju, "docker-registry")
    address = helpers.unit_address(juju, unit)
    status = helpers.wait_for_unit(juju, unit, "active", f"Ready at {address}:5000 (http).")
    try:
        code, _ = helpers.http_get(f"http://{address}:5000/v2/")
    except urllib.error.HTTPError as exc:  # 401 would mean auth is on; not in this config
        code = exc.code
    assert code == 200
    assert "5000/tcp" in status.open_ports
