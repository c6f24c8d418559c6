"""What a COS collector (grafana-agent or opentelemetry-collector, a subordinate related over
cos-agent) is told: the scrape job, the alert rules and the dashboards.

The upstream interface layer's ``update_cos_agent`` publishes the scrape job and the dashboards
but always empty alert rules; ``publish`` calls it, then puts the charm's rules (cosl's
``AlertRules``, with this unit's Juju topology) into the same unit data and checks the whole
against the interface's own data model.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

import yaml
from cosl import JujuTopology
from cosl.rules import AlertRules

COS_DIR = "cos"
ALERT_RULES_DIR = f"{COS_DIR}/alert_rules"
DASHBOARDS_DIR = f"{COS_DIR}/dashboards"
JOB_NAME = "registry"  # the published job is cos-agent_0_registry
TOPOLOGY_PLACEHOLDER = "%%juju_topology%%"


def alert_rules(rules_dir: Path, topology: JujuTopology) -> dict:
    """The rule files of ``rules_dir`` as one rules dict, for ``topology`` (a cosl
    JujuTopology): each expression selects this application's series, each rule carries the
    juju_* labels and each group name starts with the topology's identifier."""
    rules = AlertRules(query_type="promql", topology=topology)
    for path in sorted(rules_dir.glob("*.yaml")):
        # cosl leaves the placeholder to a cos-tool binary the charm does not ship: the
        # application's matchers go in here, so that one application's alert never fires
        # for another's series
        text = path.read_text().replace(TOPOLOGY_PLACEHOLDER, topology.alert_expression_str)
        rules.add(yaml.safe_load(text), group_name_prefix=topology.identifier)
    return rules.as_dict()


def topology(application: str, unit: str, charm_name: str) -> JujuTopology:
    return JujuTopology(
        model=os.environ.get("JUJU_MODEL_NAME", ""),
        model_uuid=os.environ.get("JUJU_MODEL_UUID", ""),
        application=application,
        unit=unit,
        charm_name=charm_name,
    )


def publish(endpoint: Any, *, debug_port: int, charm_dir: Path, topology: Any) -> None:
    """Tell every related collector (the ``cos-agent`` endpoint) to scrape
    localhost:<debug-port>/metrics, with the charm's alert rules and dashboards."""
    job = endpoint.MetricsEndpoint(
        port=debug_port, job_name=JOB_NAME, dashboards_dir=str(charm_dir / DASHBOARDS_DIR)
    )
    endpoint.update_cos_agent([job])
    model = inspect.getmodule(type(endpoint)).CosAgentProviderUnitData  # type: ignore[union-attr]
    rules = alert_rules(charm_dir / ALERT_RULES_DIR, topology)
    for relation in endpoint.relations:
        data = dict(relation.to_publish[model.KEY], metrics_alert_rules=rules)
        relation.to_publish[model.KEY] = model(**data).model_dump()
