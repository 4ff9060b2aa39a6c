"""Run a module of library/ in-process, the way Ansible would, and return its result dict.

Modules import shared code as ``ansible.module_utils.marketplace_*``; this helper makes our
module_utils/ importable under that package, then calls the module's ``main()`` with the given args
(``_ansible_check_mode`` for check mode) and parses the JSON that exit_json/fail_json print.
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import sys
from pathlib import Path

import ansible.module_utils
from ansible.module_utils.testing import patch_module_args

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "library"
MODULE_UTILS = ROOT / "module_utils"

if str(MODULE_UTILS) not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(str(MODULE_UTILS))


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


__all__ = ["load_module", "run_module", "sys"]


# Keys Ansible itself adds to every result; RETURN does not need to document them.
STANDARD_RESULT_KEYS = {"changed", "failed", "msg", "invocation", "warnings", "deprecations",
                        "skipped", "_raw", "exception"}


def documented_return_keys(name: str) -> set[str]:
    import yaml

    mod = load_module(name)
    return set((yaml.safe_load(mod.RETURN) or {}).keys())


def assert_return_documented(name: str, result: dict) -> None:
    """Every key the module returned is in RETURN (call with real results of the module).

    Together with the per-module tests that exercise every section, this shows RETURN documents
    exactly the keys the module returns.
    """
    returned = set(result) - STANDARD_RESULT_KEYS
    documented = documented_return_keys(name)
    undocumented = returned - documented
    assert not undocumented, f"{name} returned keys missing from RETURN: {sorted(undocumented)}"
