# Decisions of the incident role, in Python so they are unit-tested (tests/unit/test_incident_filters.py):
# - incident_rollback_plan: after a confirmed P0 restart that did not bring health back, may the deploy role's
#   rollback run? Only when the application release can be the cause: a P0 in which a data service (postgres,
#   redis) failed is not rolled back, the run fails naming the data services instead.
# - incident_scope: the `services` extra var (a list or a comma-separated string) as a clean list of names.
from __future__ import annotations

from collections.abc import Mapping


class IncidentInputError(ValueError):
    pass


def _names(value, what):
    if value is None:
        return []
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise IncidentInputError("%s must be a list of service names or a comma-separated string, not %r"
                                 % (what, value))
    out = []
    for item in items:
        if not isinstance(item, str):
            raise IncidentInputError("%s must hold service names (strings), not %r" % (what, item))
        name = item.strip()
        if name and name not in out:
            out.append(name)
    return out


def incident_scope(value, what="services"):
    """`services` -> a list of distinct, trimmed names; empty entries dropped; a non-name is refused."""
    from ansible.errors import AnsibleFilterError

    try:
        return _names(value, what)
    except IncidentInputError as exc:
        raise AnsibleFilterError(str(exc)) from None


def _still_down(failed, verify_services):
    """Names among ``failed`` that the last status read does not show ok (all of them when there is no read)."""
    if not isinstance(verify_services, Mapping) or not verify_services:
        return list(failed)
    out = []
    for name in failed:
        info = verify_services.get(name)
        if not isinstance(info, Mapping) or info.get("status") != "ok":
            out.append(name)
    return out


def _state(name, verify_services):
    info = verify_services.get(name) if isinstance(verify_services, Mapping) else None
    if isinstance(info, Mapping):
        return "%s: %s" % (name, info.get("message") or info.get("status") or "unknown")
    return "%s: no status" % name


def incident_rollback_plan(failed_services, data_services, verify_services=None, rollback_enabled=True):
    """Whether the rollback may run after a restart that did not heal, and what to record either way.

    Returns ``rollback`` (bool), ``data_services_failed`` (the failed data services), ``still_down`` (failed
    services the last status read does not show ok), ``detail`` (the rollback action's detail when it does not
    run) and ``failure`` (the run's failure message when it does not run).
    """
    failed = _names(failed_services, "failed services")
    data = set(_names(data_services, "data services"))
    data_failed = [s for s in failed if s in data]
    still = _still_down(failed, verify_services)
    if not data_failed:
        return dict(rollback=bool(rollback_enabled), data_services_failed=[], still_down=still, detail=None,
                    failure=None)
    named = ", ".join(data_failed)
    detail = ("not run: the outage involves %s (data service%s); a rollback of the application release cannot bring "
              "%s back. Fix %s first (troubleshoot-startup.yml, emergency-recover.yml); run rollback.yml "
              "-e confirm=true only if the backend still fails once %s %s healthy"
              % (named, "s" if len(data_failed) > 1 else "", "them" if len(data_failed) > 1 else "it", named, named,
                 "are" if len(data_failed) > 1 else "is"))
    if still:
        failure = ("health did not come back after restarting %s: still not healthy: %s; the application was not "
                   "rolled back (the outage began with %s, which a rollback of the release cannot fix)"
                   % (", ".join(failed), "; ".join(_state(s, verify_services) for s in still), named))
    else:
        failure = ("health did not come back after restarting %s: the services run again but the API does not answer; "
                   "the application was not rolled back because the outage began with %s (run rollback.yml "
                   "-e confirm=true if the release is at fault)" % (", ".join(failed), named))
    return dict(rollback=False, data_services_failed=data_failed, still_down=still, detail=detail, failure=failure)


class FilterModule:
    def filters(self):
        return {
            "incident_rollback_plan": incident_rollback_plan,
            "incident_scope": incident_scope,
        }
