"""What the CLI knows about the project's playbooks without running them: their one-line description, whether
they change state, their public inputs (module_utils/marketplace_inputs.py), the boolean options of the roles'
argument specs, and the project's version."""
from __future__ import annotations

import functools
import importlib.util
from importlib import metadata
from pathlib import Path

import yaml

from runbook.driver import PLAYBOOK_DIR, PROJECT_ROOT

DISTRIBUTION = "equipment-marketplace-runbook"


# module_utils/<name>.py on the controller, through its one loader: module_utils/marketplace_controller.py.
_spec = importlib.util.spec_from_file_location(
    "marketplace_controller", PROJECT_ROOT / "module_utils" / "marketplace_controller.py")
_spec.loader.exec_module(_loader := importlib.util.module_from_spec(_spec))
_module_utils = _loader.module_utils


def inputs_spec():
    """module_utils/marketplace_inputs.py, the one spec of the public extra vars (pure Python)."""
    return _module_utils("marketplace_inputs")


@functools.cache
def bool_options() -> frozenset[str]:
    """Names a `-e name=value` types as a boolean: the bool inputs of the spec and the roles' bool options."""
    names = {name for name, item in inputs_spec().INPUTS.items() if item["type"] == "bool"}
    for spec_file in sorted((PROJECT_ROOT / "roles").glob("*/meta/argument_specs.yml")):
        try:
            data = yaml.safe_load(spec_file.read_text()) or {}
        except yaml.YAMLError:
            continue
        for entry in (data.get("argument_specs") or {}).values():
            for option, desc in ((entry or {}).get("options") or {}).items():
                if isinstance(desc, dict) and desc.get("type") == "bool":
                    names.add(option)
    return frozenset(names)


def _description(path: Path) -> str:
    try:
        plays = yaml.safe_load(path.read_text()) or []
    except yaml.YAMLError:
        return ""
    if isinstance(plays, list) and plays and isinstance(plays[0], dict):
        return str(plays[0].get("name") or "")
    return ""


def playbook_catalogue() -> list[dict]:
    spec = inputs_spec()
    rows = []
    for path in sorted(PLAYBOOK_DIR.glob("*.yml")):
        rows.append({
            "name": path.stem,
            "description": _description(path),
            "changes_state": spec.changes_state(path.stem),
            "inputs": [name for name, _type, _desc in spec.describe_inputs(path.stem)],
        })
    return rows


def project_version() -> str:
    """This project's version, with the ansible-core and ansible-runner it runs with."""
    try:
        own = metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        import tomllib

        own = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["version"]
    parts = []
    for dist in ("ansible-core", "ansible-runner"):
        try:
            parts.append("%s %s" % (dist, metadata.version(dist)))
        except metadata.PackageNotFoundError:
            parts.append("%s not installed" % dist)
    return "%s (%s)" % (own, ", ".join(parts))
