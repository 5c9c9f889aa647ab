"""Which attributes may become metric labels."""

from __future__ import annotations

import logging

import pytest

from otel_ai_cost.attribution import metric_label_allowlist
from otel_ai_cost.contract import METRIC_LABELS_DEFAULT, Attribution, Env, GenAI, Resource


def test_default_when_unset_or_blank() -> None:
    assert metric_label_allowlist({}) == METRIC_LABELS_DEFAULT
    assert metric_label_allowlist({Env.METRIC_LABELS: "  "}) == METRIC_LABELS_DEFAULT


def test_custom_list_replaces_the_default() -> None:
    environ = {Env.METRIC_LABELS: f" {GenAI.PROVIDER_NAME} ,{Attribution.TEAM},,{Attribution.TEAM}"}
    assert metric_label_allowlist(environ) == (GenAI.PROVIDER_NAME, Attribution.TEAM)


def test_unbounded_attributes_are_refused_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    environ = {
        Env.METRIC_LABELS: ",".join(
            [
                GenAI.REQUEST_MODEL,
                Attribution.JOB_ID,
                Attribution.USER_ID,
                Attribution.TAG_PREFIX + "customer",
                Resource.CICD_PIPELINE_RUN_ID,
                Attribution.TEAM,
            ]
        )
    }
    with caplog.at_level(logging.WARNING):
        labels = metric_label_allowlist(environ)
    assert labels == (GenAI.REQUEST_MODEL, Attribution.TEAM)
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    for refused in (Attribution.JOB_ID, Attribution.USER_ID, "ai_cost.tag.customer", "cicd.pipeline.run.id"):
        assert refused in warnings[0].getMessage()


def test_reads_the_process_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(Env.METRIC_LABELS, Attribution.JOB_ID)
    assert metric_label_allowlist() == ()
