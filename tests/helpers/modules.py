"""Run a module of library/ in-process, the way Ansible would, and return its result dict.

Modules import shared code as ``ansible.module_utils.marketplace_*``; this helper makes our
module_utils/ importable under that package, then calls the module's ``main()`` with the given args
(``_ansible_check_mode`` for check mode) and parses the JSON that exit_json/fail_json print.
"""
from __future__ import annotations

import contextlib
import functools
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
ANSIBLE_CFG = ROOT / "ansible.cfg"

# As ansible.cfg configures it (module_utils = module_utils:library): health_gather imports the health modules.
for _path in (MODULE_UTILS, LIBRARY):
    if str(_path) not in ansible.module_utils.__path__:
        ansible.module_utils.__path__.append(str(_path))


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


__all__ = ["load_module", "module_docs", "run_module", "sys"]


# Keys Ansible itself adds to every result; RETURN does not need to document them.
STANDARD_RESULT_KEYS = {"changed", "failed", "msg", "invocation", "warnings", "deprecations",
                        "skipped", "_raw", "exception"}


@functools.cache
def fragment_loader():
    """Ansible's doc-fragment loader, searching the ``doc_fragment_plugins`` paths our ansible.cfg sets.

    The paths come from ansible's own config manager reading ansible.cfg (relative paths resolved the way
    ansible resolves them), whatever ANSIBLE_CONFIG or the working directory of the test run is.
    """
    from ansible.config.manager import ConfigManager
    from ansible.plugins.loader import fragment_loader as loader

    for path in ConfigManager(str(ANSIBLE_CFG)).get_config_value("DOC_FRAGMENT_PLUGIN_PATH") or []:
        loader.add_directory(path)
    return loader


def module_docs(name: str) -> tuple[dict, str, dict]:
    """``(doc, examples, returndocs)`` of library/<name>.py as ansible-doc reads them.

    ``doc`` is DOCUMENTATION with every ``extends_documentation_fragment`` merged in by ansible itself
    (``ansible.utils.plugin_docs.get_docstring`` -> ``add_fragments``); an unknown fragment raises.
    ``returndocs`` is RETURN: ansible merges fragments into DOCUMENTATION only, so RETURN is the module's own.
    """
    from ansible.utils.plugin_docs import get_docstring

    doc, examples, returndocs, _metadata = get_docstring(str(LIBRARY / f"{name}.py"), fragment_loader(),
                                                         is_module=True)
    return doc or {}, examples, returndocs or {}


def documented_return_keys(name: str) -> set[str]:
    return set(module_docs(name)[2])


def assert_return_documented(name: str, result: dict) -> None:
    """Every key the module returned is in RETURN (call with real results of the module).

    Together with the per-module tests that exercise every section, this shows RETURN documents
    exactly the keys the module returns.
    """
    returned = set(result) - STANDARD_RESULT_KEYS
    documented = documented_return_keys(name)
    undocumented = returned - documented
    assert not undocumented, f"{name} returned keys missing from RETURN: {sorted(undocumented)}"
