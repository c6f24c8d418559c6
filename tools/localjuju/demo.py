"""`make demo`: one docker-registry unit in the local model, with basic auth (a generated
password), TLS from the real easyrsa charm (built into BUILD/easyrsa from the layer cache when
missing) and the containerd client fake related; then a `push` and an `images` action through
the model. Writes BUILD/demo/connection.json. Safe to run twice.

`--clean` destroys the model (units leave the Juju way: containers removed, the client fake
removes the CA it installed) and removes BUILD/demo — nothing else.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tests.support.charms import EASYRSA_LAYER, BuildError, build_charm, deploy_easyrsa
from tests.support.images import make_test_image, registry_image_ref
from tools.localjuju.controller import Controller
from tools.localjuju.model import Model, ModelError, unit_dirname

APP, UNIT = "docker-registry", "docker-registry/0"
DEMO_IMAGE = "demo/hello-registry:1"


def _status(ctl: Controller, unit: str) -> dict:
    app = unit.split("/")[0]
    return ctl.status()["applications"][app]["units"][unit]["workload-status"]


def _wait_ready(ctl: Controller, timeout: float = 180) -> str:
    deadline = time.time() + timeout
    while True:
        status = _status(ctl, UNIT)
        if status["current"] == "active" and "(https)" in status["message"]:
            return status["message"]
        if time.time() > deadline or status["current"] in ("error", "blocked"):
            raise SystemExit(f"demo: {UNIT} is {status['current']}: {status['message']}")
        ctl.update_status()
        time.sleep(1)


def demo_dir(build: Path) -> Path:
    return Path(os.environ.get("DEMO_DIR") or build / "demo")


def deploy(build: Path) -> None:
    demo = demo_dir(build)
    ctl = Controller(Model(demo / "model"), echo=lambda m: print(f"  {m}"))
    # the client fake installs the CA where the host's docker looks (removed again on clean)
    os.environ.setdefault("LOCALJUJU_DOCKER_CERTS_D", "/etc/docker/certs.d")
    state = ctl.model.read() if ctl.model.exists() else {"applications": {}}
    if APP not in state["applications"]:
        print("demo: deploying docker-registry with basic auth, TLS from easyrsa, a client")
        ctl.deploy(
            str(build / APP),
            APP,
            config={
                "registry-image": registry_image_ref(),
                "auth-basic-password": secrets.token_urlsafe(18),
            },
            resources={"registry-image": str(build / "images" / "registry-image.tar")},
        )
        easyrsa = build / "easyrsa"
        if not (easyrsa / "metadata.yaml").exists():
            print(f"demo: building the easyrsa charm from {EASYRSA_LAYER}")
            try:
                build_charm("easyrsa", EASYRSA_LAYER, build)
            except BuildError as exc:
                raise SystemExit(f"demo: {exc}") from None
        deploy_easyrsa(ctl, easyrsa)
        ctl.deploy("fake:containerd", "containerd")
        ctl.integrate(f"{APP}:cert-provider", "easyrsa:client")
        ctl.integrate(APP, "containerd")
    else:
        print("demo: already deployed; checking it")
    message = _wait_ready(ctl)
    config = ctl.config_get(APP)
    netloc = message.split("Ready at ", 1)[1].split(" ", 1)[0]
    ca = ctl.model.root / "clients" / netloc / "ca.crt"
    connection = {
        "registry_url": f"https://{netloc}",
        "registry_netloc": netloc,
        "basic_user": config["auth-basic-user"],
        "basic_password": config["auth-basic-password"],
        "ca_cert": str(ca) if ca.exists() else None,
    }
    path = demo / "connection.json"
    path.write_text(json.dumps(connection, indent=2) + "\n")
    path.chmod(0o600)

    make_test_image(DEMO_IMAGE, seed="demo")
    juju = f"tools/localjuju/juju --model {ctl.model.root}"
    print(f"\ndemo: $ {juju} run {UNIT} push image={DEMO_IMAGE} pull=false")
    _print_action(ctl.run_action(UNIT, "push", {"image": DEMO_IMAGE, "pull": False}))
    print(f"\ndemo: $ {juju} run {UNIT} images")
    _print_action(ctl.run_action(UNIT, "images", {}))
    print(
        f"""
demo: {message}
  connection details: {path} (mode 0600: it holds the password)
  log in and pull with a plain docker client:
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["basic_password"])' \\
      {path} | docker login {netloc} -u {connection["basic_user"]} --password-stdin
    docker pull {netloc}/{DEMO_IMAGE}
  or with curl:  curl --cacert {ca} -u {connection["basic_user"]} https://{netloc}/v2/_catalog
  the model:     {juju} status | debug-log | config {APP} … | run {UNIT} <action>
  tear down:     make demo-clean"""
    )


def _print_action(record: dict) -> None:
    print(
        f"  status: {record['status']}" + (f" ({record['message']})" if record["message"] else "")
    )
    for key, value in sorted(record.get("results", {}).items()):
        text = str(value)
        print(
            f"  {key}: " + (text if "\n" not in text else "\n    " + text.replace("\n", "\n    "))
        )
    if record["status"] != "completed":
        raise SystemExit("demo: the action failed")


def clean(build: Path) -> None:
    demo = demo_dir(build)
    model = Model(demo / "model")
    if model.exists():
        suffixes = {"-" + unit_dirname(u) for u in model.read()["units"]}
        try:
            Controller(model, echo=lambda m: print(f"  {m}")).destroy()
        except ModelError as exc:
            print(f"demo-clean: {exc}", file=sys.stderr)
        names = subprocess.run(
            ["docker", "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True
        ).stdout.split()
        leftovers = [
            n for n in names if n.startswith("registry-") and any(n.endswith(s) for s in suffixes)
        ]
        if leftovers:
            subprocess.run(["docker", "rm", "-f", *leftovers], capture_output=True)
        subprocess.run(["docker", "rmi", DEMO_IMAGE], capture_output=True)
    shutil.rmtree(demo, ignore_errors=True)
    print("demo-clean: done")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clean", action="store_true")
    parser.add_argument("build", type=Path)
    args = parser.parse_args(argv)
    (clean if args.clean else deploy)(args.build.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
