"""replicas: the primary rule, what a backup copies and deletes, and the status it shows
(pure decisions, no registry)."""

from __future__ import annotations

from charms.layer.docker_registry.pipeline import proxy, replicas, status

U0, U1, U2, U10 = (f"docker-registry/{n}" for n in (0, 1, 2, 10))
D1, D2, D3 = (f"sha256:{c * 64}" for c in "123")


# -- which units replicate -------------------------------------------------------------------


def test_only_filesystem_units_behind_a_proxy_replicate():
    assert replicas.replicates("filesystem", True, cache=False)
    assert not replicas.replicates("filesystem", False, cache=False)  # no proxy
    assert not replicas.replicates("s3", True, cache=False)  # shared storage
    assert not replicas.replicates("filesystem", True, cache=True)  # the upstream fills it


# -- the primary rule ------------------------------------------------------------------------


def test_with_no_record_the_primary_is_the_lowest_unit_number_whoever_leads():
    # GIVEN an upgrade from a revision without replication: haproxy sent everything to /2
    # WHEN the leader, /10, records the primary for the first time
    chosen = replicas.choose_primary("", U10, [U10, U2], set())
    # THEN it is the unit that holds the pushes, not the leader
    assert chosen == U2
    assert replicas.current_primary("", [U10, U2]) == U2


def test_a_leader_that_has_not_synced_does_not_become_primary():
    assert replicas.choose_primary(U0, U1, [U0, U1], in_sync=set()) == U0


def test_a_leader_in_sync_with_the_primary_takes_over():
    # GIVEN /0 was primary and leader; its machine went away, Juju made /1 the leader
    assert replicas.choose_primary(U0, U1, [U0, U1], in_sync={U1}) == U1


def test_a_returning_old_primary_is_a_backup():
    # GIVEN /1 took over: the record says /1, /0 comes back (not the leader)
    assert replicas.current_primary(U1, [U0, U1]) == U1
    assert replicas.choose_primary(U1, U1, [U0, U1], in_sync={U0}) == U1


def test_a_departed_primary_is_replaced_by_a_unit_in_sync_with_it():
    # GIVEN /0 was removed; the new leader /2 is new and empty, /1 had synced /0
    assert replicas.choose_primary(U0, U2, [U1, U2], in_sync={U1}) == U1
    # the leader itself first when it holds the images
    assert replicas.choose_primary(U0, U1, [U1, U2], in_sync={U1, U2}) == U1
    # nobody synced: the leader (no backup deletes down to it, see plan_sync)
    assert replicas.choose_primary(U0, U2, [U1, U2], in_sync=set()) == U2
    # meanwhile the others wait for the leader to name one
    assert replicas.current_primary(U0, [U1, U2]) == ""


def test_haproxy_gets_the_recorded_primary_active_and_the_others_backup():
    units = {U0: "10.0.0.1", U1: "10.0.0.2", U2: "10.0.0.3"}
    (svc,) = proxy.services(units, 5000, tls=False, primary=U1)
    active = [s[0] for s in svc["servers"] if not s[3].endswith("backup")]
    assert active == ["docker-registry-1"]


# -- what a backup copies and deletes --------------------------------------------------------


def test_a_backup_copies_what_it_lacks_or_holds_at_another_digest_and_skips_the_rest():
    primary = {"pause": {"3.9": D1, "3.10": D2}, "app": {"1": D3}}
    local = {"pause": {"3.9": D1, "3.10": D1}}
    plan = replicas.plan_sync(primary, local, replicated={})
    assert plan.copies == (
        replicas.Copy("app", "1", D3),
        replicas.Copy("pause", "3.10", D2),
    )
    assert plan.deletes == () and plan.behind == 2


def test_a_tag_the_primary_deleted_is_deleted_here_when_it_came_from_the_primary():
    local = {"pause": {"3.9": D1, "old": D2}}
    replicated = {"pause": {"3.9": D1, "old": D2}}
    plan = replicas.plan_sync({"pause": {"3.9": D1}}, local, replicated)
    assert plan.deletes == (replicas.Copy("pause", "old", D2),)
    assert plan.behind == 1 and plan.foreign == 0


def test_a_tag_no_sync_from_this_primary_brought_is_kept_and_counted():
    # GIVEN a tag pushed to this unit while it served as the backup, or synced from another
    # primary: the primary never had it, so it is no deletion of the primary's
    local = {"pause": {"3.9": D1}, "hotfix": {"1": D2}}
    plan = replicas.plan_sync({"pause": {"3.9": D1}}, local, replicated={"pause": {"3.9": D1}})
    assert plan.deletes == () and plan.foreign == 1 and plan.behind == 0


def test_an_empty_primary_never_makes_a_backup_delete_what_it_holds():
    local = {"pause": {"3.9": D1}}
    assert replicas.plan_sync({}, local, replicated={}).deletes == ()


def test_a_manifest_another_wanted_tag_points_at_is_not_deleted():
    # a delete by digest takes every tag pointing at it: "latest" still wants D1
    local = {"app": {"1": D1, "latest": D1}}
    plan = replicas.plan_sync({"app": {"latest": D1}}, local, replicated=local)
    assert plan.deletes == ()


def test_matched_records_the_primarys_tags_held_here_at_the_same_digest():
    primary = {"a": {"1": D1, "2": D2}, "b": {"1": D3}}
    local = {"a": {"1": D1, "2": D3}}
    assert replicas.matched(primary, local) == {"a": {"1": D1}}


# -- status ----------------------------------------------------------------------------------


def _ready(role: str) -> str:
    report = status.Report(ready_at="10.0.0.99:5000", proxied=True, role=role)
    return status.decide(report)[1]


def test_the_status_shows_the_role_and_the_lag():
    assert (
        _ready(replicas.describe(U0, None)) == "Ready at 10.0.0.99:5000 (http, proxied); primary."
    )
    in_sync = replicas.describe(U0, replicas.SyncOutcome())
    assert _ready(in_sync).endswith("; backup, in sync with docker-registry/0.")
    behind = replicas.describe(U0, replicas.SyncOutcome(behind=12))
    assert behind == "backup, 12 tags behind docker-registry/0"
    unreachable = replicas.describe(U0, replicas.SyncOutcome(error="no answer"))
    assert unreachable == (
        "backup, cannot reach docker-registry/0 (no answer); serving what it synced"
    )
    assert status.decide(status.Report(ready_at="x", role=unreachable))[0] == "active"
    stuck = replicas.SyncOutcome(stuck="catalog: HTTP 500")
    assert not stuck.in_sync
    assert replicas.describe(U0, stuck) == (
        "backup, cannot sync from docker-registry/0 (catalog: HTTP 500)"
    )
