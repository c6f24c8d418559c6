"""Smoke: the built charm's real hooks, one unit, registry image from the resource."""

import urllib.error


def test_deploy_one_unit_answers(model, charm_dir, registry_image_tar, helpers):
    # GIVEN the built charm and the offline registry image as the registry-image resource
    # WHEN one unit is deployed
    model.deploy(
        str(charm_dir),
        "docker-registry",
        config={"registry-image": helpers.registry_image},
        resources={"registry-image": str(registry_image_tar)},
    )
    # THEN it reports Ready at its own address and the registry answers there
    helpers.wait_for_status(
        model, "docker-registry/0", "active", "Ready at 127.0.0.2:5000 (http)."
    )
    try:
        status, _ = helpers.http_get("http://127.0.0.2:5000/v2/")
    except urllib.error.HTTPError as exc:  # 401 would mean auth is on; not in this config
        status = exc.code
    assert status == 200
    unit = model.status()["applications"]["docker-registry"]["units"]["docker-registry/0"]
    assert "5000/tcp" in unit["open-ports"]
