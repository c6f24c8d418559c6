"""state.json through the typed state and back: what hooktools and the fakes read stays as is."""

import json

from tools.localjuju.model import Model
from tools.localjuju.state import Event, ModelState, edit, load

RAW = {
    "name": "m",
    "uuid": "u",
    "next_address": 4,
    "next_machine": 2,
    "next_relation_id": 2,
    "next_action_id": 3,
    "applications": {
        "a": {
            "charm": "/c",
            "fake": None,
            "config": {"x": 1},
            "resources": {"img": "/r/img.tar"},
            "leader": "a/0",
            "next_unit": 1,
            "version": "1.0",
            "status": {"status": "active", "message": "", "since": 1.5},
            "trust": True,
            "charm_name": "a",
            "endpoints": {
                "peer": {"role": "peers", "interface": "p", "scope": "global"},
                "db": {"role": "requires", "interface": "db", "scope": "global"},
            },
            "extra_bindings": ["b"],
            "config_options": {"x": {"type": "int", "default": 0}, "y": {"default": "d"}},
            "resource_names": ["img"],
            "actions": {"go": {"params": {}}},
            "storage": {"data": "1G"},
            "storage_meta": {"data": {"type": "filesystem", "location": "/srv/data"}},
        },
        "b": {
            "charm": None,
            "fake": "nrpe",
            "config": {},
            "resources": {},
            "leader": "b/0",
            "next_unit": 1,
            "version": "",
            "status": None,
            "trust": False,
            "charm_name": "NrpeFake",
            "endpoints": {"db": {"role": "provides", "interface": "db", "scope": "global"}},
            "extra_bindings": [],
            "config_options": {},
            "resource_names": [],
            "actions": {},
            "storage": {},
            "storage_meta": {},
        },
    },
    "units": {
        "a/0": {
            "app": "a",
            "address": "127.0.0.2",
            "machine": "0",
            "workload": {"status": "active", "message": "ok", "since": 2.0},
            "agent": "error",
            "error": {"unit": "a/0", "hook": "start", "seq": 7},
            "ports": ["5000/tcp"],
        },
        "b/0": {
            "app": "b",
            "address": "127.0.0.3",
            "machine": "1",
            "workload": {"status": "waiting", "message": "", "since": 2.0},
            "agent": "idle",
            "error": None,
            "ports": [],
        },
    },
    "relations": {
        "0": {
            "id": 0,
            "endpoints": [["a", "peer"]],
            "interface": "p",
            "unit_data": {"a/0": {"private-address": "127.0.0.2"}},
            "app_data": {"a": {}},
            "members": {"a/0": []},
        },
        "1": {
            "id": 1,
            "endpoints": [["a", "db"], ["b", "db"]],
            "interface": "db",
            "unit_data": {},
            "app_data": {"a": {}, "b": {"k": "v"}},
            "members": {"a/0": ["b/0"], "b/0": ["a/0"]},
        },
    },
    "leader_data": {"a": {"k": "v"}},
    "queue": [
        {"unit": "a/0", "hook": "start", "seq": 7},
        # what hooktools' leader-set queues
        {"unit": "a/1", "hook": "leader-settings-changed", "seq": 8},
        {
            "unit": "b/0",
            "hook": "db-relation-departed",
            "relation": "db",
            "relation_id": 1,
            "remote_unit": "a/0",
            "remote_app": "a",
            "departing": "a/0",
            "seq": 9,
        },
        {"internal": "drop-unit", "unit": "a/0", "after": ["a/0"], "seq": 10},
        {"internal": "elect", "app": "a", "after": ["a/0"], "seq": 11},
        {"unit": "a/1", "hook": "secret-changed", "secret_id": "secret:" + "x" * 20, "seq": 12},
        {"unit": "a/1", "hook": "data-storage-detaching", "storage_id": "data/0", "seq": 13},
        {"internal": "detach-storage", "storage_id": "data/0", "after": ["a/1"], "seq": 14},
    ],
    "dying": ["a/0"],
    "secrets": {
        "x" * 20: {
            "name": "creds",
            "description": None,
            "revisions": {"1": {"pass": "1"}},
            "latest": 1,
            "grants": ["a"],
            "tracking": {"a/1": 1},
            "created": "2026-01-01T00:00:00Z",
            "updated": "2026-01-01T00:00:00Z",
        }
    },
    "storage": {
        "data/0": {
            "name": "data",
            "kind": "filesystem",
            "pool": "tmpfs",
            "size": 1024,
            "unit": "a/1",
            "location": "/srv/data",
            "since": "2026-01-01T00:00:00",
        }
    },
    "next_storage": 1,
}


def test_round_trip_keeps_the_document():
    assert ModelState.from_json(json.loads(json.dumps(RAW))).to_json() == RAW


def test_typed_view():
    st = ModelState.from_json(RAW)
    assert st.relations[1].endpoint_of("b") == "db"
    assert st.units_of_rel(st.relations[1]) == ["a/0", "b/0"]
    assert st.app("a").effective_config() == {"x": 1, "y": "d"}
    assert st.units["a/0"].error == Event(seq=7, unit="a/0", hook="start")
    assert st.queue[2].kind == "departed"


def test_drop_relation_of_the_older_layout_reads_its_id():
    ev = Event.from_json({"internal": "drop-relation", "relation": 3, "after": [], "seq": 1})
    assert ev.relation_id == 3 and ev.relation is None


def test_edit_writes_back_and_load_reads(tmp_path):
    model = Model(tmp_path / "model")
    model.root.mkdir()
    model.state_file.write_text(json.dumps(RAW))
    with edit(model) as st:
        st.units["b/0"].ports.append("80/tcp")
    assert model.read()["units"]["b/0"]["ports"] == ["80/tcp"]
    assert load(model).units["b/0"].ports == ["80/tcp"]
