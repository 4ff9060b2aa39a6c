"""Run a module of library/ in-process, the way Ansible would, and return its result dict.

Modules import shared code as ``ansible.module_utils.marketplace_*``; this helper makes our
module_utils/ importable under that package, then calls the module's ``main()`` with the given args
(``_ansible_check_mode`` for check mode) and parses the JSON that exit_json/fail_json print.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import json
from pathlib import Path

import ansible.module_utils
from ansible.module_utils.testing import patch_module_args

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "library"
MODULE_UTILS = ROOT / "module_utils"

# As ansible.cfg configures it (module_utils = module_utils).
if str(MODULE_UTILS) not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(str(MODULE_UTILS))


def load_utils(name: str):
    """module_utils/<name>.py as the modules import it (``ansible.module_utils.<name>``)."""
    return importlib.import_module("ansible.module_utils." + name)


def load_module(name: str):
    """Import library/<name>.py as a Python module (fresh each call)."""
    spec = importlib.util.spec_from_file_location("em_module_" + name, LIBRARY / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run_module(name: str, args: dict | None = None, check_mode: bool = False) -> dict:
    """Run the module; return its result (``failed`` is True when it called fail_json).

    The raw JSON text is kept under ``_raw`` so tests can assert that no secret appears anywhere.
    """
    params = dict(args or {})
    if check_mode:
        params["_ansible_check_mode"] = True
    mod = load_module(name)
    out = io.StringIO()
    with patch_module_args(params), contextlib.redirect_stdout(out):
        try:
            mod.main()
        except SystemExit:
            pass
    raw = out.getvalue()
    try:
        result = json.loads(raw)
    except ValueError as exc:  # a module must always print one JSON document
        raise AssertionError(f"module {name} printed no JSON result: {raw[:2000]!r}") from exc
    result["_raw"] = raw
    return result
