"""The cpi_* series the Grafana dashboard and the Prometheus alert rules query, and the series a /metrics page
offers, so tests can check the first are all among the second."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "cpi-pipeline.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yaml"
ALERT_TESTS = DEPLOY / "prometheus" / "alerts.test.yaml"

_NAME = re.compile(r"\bcpi_[a-z0-9_]+")
# The series each metric type puts on a page (no `_created`: the processes disable them).
_SERIES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count", ""),
           "gauge": ("",), "info": ("_info",), "untyped": ("",)}


def queried_expressions() -> list[str]:
    """Every PromQL expression of the dashboard's panels and of the alert rules."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    rules = [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]
    return [t["expr"] for p in panels for t in p.get("targets", [])] + [str(r["expr"]) for r in rules]


def queried_series() -> set[str]:
    """The cpi_* series names those expressions use (`_bucket`, `_total` and the rest included)."""
    return {name for expr in queried_expressions() for name in _NAME.findall(expr)}


def offered_series(pages: Iterable[str]) -> set[str]:
    """The series names of every metric on the given /metrics pages, labelled children or not yet."""
    names = set()
    for page in pages:
        for family in text_string_to_metric_families(page):
            names.update(family.name + suffix for suffix in _SERIES[family.type])
    return names
