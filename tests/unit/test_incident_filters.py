"""The incident role's decisions (roles/incident/filter_plugins/incident_filters.py): which P0 may be rolled back
after a restart that did not heal, and how the `services` extra var is read."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

_PATH = Path(__file__).resolve().parents[2] / "roles" / "incident" / "filter_plugins" / "incident_filters.py"
_spec = importlib.util.spec_from_file_location("incident_filters", _PATH)
inf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(inf)

DATA = ["postgres", "redis"]


def test_an_application_outage_may_be_rolled_back():
    plan = inf.incident_rollback_plan(["backend"], DATA, {"backend": {"status": "critical", "message": "exited (1)"}})
    assert plan["rollback"] is True and plan["data_services_failed"] == [] and plan["failure"] is None
    assert plan["still_down"] == ["backend"]
    assert inf.incident_rollback_plan(["backend", "nginx"], DATA)["rollback"] is True
    # incident_rollback=false: no rollback, and nothing here claims a data service
    plan = inf.incident_rollback_plan(["backend"], DATA, None, False)
    assert plan["rollback"] is False and plan["detail"] is None


@pytest.mark.parametrize("failed", [["redis"], ["postgres"], ["backend", "redis"], ["backend", "nginx", "postgres"]])
def test_a_data_service_outage_is_not_rolled_back_and_names_the_service(failed):
    verify = {name: {"status": "critical", "message": "%s exited (1)" % name} for name in failed}
    plan = inf.incident_rollback_plan(failed, DATA, verify)
    data = [s for s in failed if s in DATA]
    assert plan["rollback"] is False and plan["data_services_failed"] == data
    assert plan["detail"].startswith("not run: the outage involves " + ", ".join(data))
    assert "health did not come back" in plan["failure"] and "not rolled back" in plan["failure"]
    for name in data:
        assert "%s exited (1)" % name in plan["failure"]


def test_data_service_back_but_api_not_still_no_rollback():
    plan = inf.incident_rollback_plan(["redis"], DATA, {"redis": {"status": "ok", "message": "running"}})
    assert plan["rollback"] is False and plan["still_down"] == []
    assert "the API does not answer" in plan["failure"] and "began with redis" in plan["failure"]


def test_no_status_read_counts_every_failed_service_as_down():
    plan = inf.incident_rollback_plan(["redis", "backend"], DATA, None)
    assert plan["still_down"] == ["redis", "backend"] and "redis: no status" in plan["failure"]


@pytest.mark.parametrize(("value", "expected"), [
    (None, []), ([], []), ("", []), ("backend", ["backend"]), ("backend, nginx,,", ["backend", "nginx"]),
    (["redis", " redis ", ""], ["redis"]), (("nginx",), ["nginx"]),
])
def test_services_are_read_as_a_clean_list(value, expected):
    assert inf.incident_scope(value) == expected


@pytest.mark.parametrize("value", [5, {"backend": 1}, ["backend", 3], True])
def test_services_that_are_not_names_are_refused(value):
    with pytest.raises(AnsibleFilterError, match="services must"):
        inf.incident_scope(value)
