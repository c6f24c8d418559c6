"""User secrets in the local model, the verbs' side over an in-memory state (no units run):
content as Juju's add-secret takes it, who gets secret-changed, the config type `secret`."""

from __future__ import annotations

import base64

import pytest

from tools.localjuju import secrets
from tools.localjuju.meta import convert_config_value
from tools.localjuju.model import ModelError
from tools.localjuju.scheduler import Scheduler
from tools.localjuju.state import Application, CharmMeta, ModelState, Status, Unit


@pytest.fixture
def st() -> ModelState:
    state = ModelState(name="m", uuid="0" * 8)
    for app in ("registry", "other"):
        state.applications[app] = Application(charm="/c", fake=None, meta=CharmMeta())
    for unit, address in (("registry/0", "2"), ("registry/1", "3"), ("other/0", "4")):
        state.units[unit] = Unit(unit.split("/")[0], f"127.0.0.{address}", "0", Status("active"))
    return state


def test_content_as_add_secret_takes_it(tmp_path):
    key = tmp_path / "registry.key"
    key.write_text("-----BEGIN PRIVATE KEY-----\n")
    extra = tmp_path / "more.yaml"
    extra.write_text("cache-password: c\n")
    content = secrets.parse_content(
        [
            "auth-basic-password=p=w",
            f"storage-s3-secretkey#base64={base64.b64encode(b's3').decode()}",
            f"tls-key-blob#file={key}",
        ],
        str(extra),
    )
    assert content == {
        "cache-password": "c",
        "auth-basic-password": "p=w",
        "storage-s3-secretkey": "s3",
        "tls-key-blob": "-----BEGIN PRIVATE KEY-----\n",
    }


@pytest.mark.parametrize("item", ["Password=x", "pw=x", "9lives=x", "key#zip=x", "novalue"])
def test_keys_juju_refuses_are_refused(item):
    with pytest.raises(ModelError):
        secrets.parse_content([item], None)


def test_secret_changed_goes_to_units_that_read_it_and_may_still(st):
    scheduler = Scheduler()
    uri = secrets.add(st, "creds", {"pass": "1"}, None)
    secrets.grant(st, uri, "registry")
    xid = secrets.xid_of(uri)
    # registry/0 read revision 1, registry/1 never read it, other/0 read it but is not granted
    st.secrets[xid]["tracking"] = {"registry/0": 1, "other/0": 1}
    secrets.update(st, scheduler, "creds", {"pass": "2"})
    assert [(e.unit, e.hook, e.secret_id) for e in st.queue] == [
        ("registry/0", "secret-changed", uri)
    ]
    # the same content again is no new revision; a second one before the hook ran queues none
    secrets.update(st, scheduler, uri, {"pass": "2"})
    secrets.update(st, scheduler, uri, {"pass": "3"})
    assert len(st.queue) == 1 and st.secrets[xid]["latest"] == 3


def test_names_are_unique_and_removal_is_whole_or_by_revision(st):
    uri = secrets.add(st, "creds", {"pass": "1"}, None)
    with pytest.raises(ModelError, match="already exists"):
        secrets.add(st, "creds", {"pass": "1"}, None)
    secrets.update(st, Scheduler(), uri, {"pass": "2"})
    secrets.remove(st, uri, revision=1)
    assert list(st.secrets[secrets.xid_of(uri)]["revisions"]) == ["2"]
    secrets.remove(st, "creds")
    with pytest.raises(ModelError, match="not found"):
        secrets.find(st, uri)


def test_a_secret_option_takes_a_secret_uri_only():
    spec = {"type": "secret"}
    uri = "secret:d4a1k0bt2rqc73c4b5e0"
    assert convert_config_value("credentials", spec, uri) == uri
    with pytest.raises(ModelError, match="expected a secret URI"):
        convert_config_value("credentials", spec, "hunter2")
