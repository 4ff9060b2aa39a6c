"""Modules of library/ for the tests: run in-process (devtools/modules.py, shared with bench/), and their
documentation as ansible-doc reads it."""
from __future__ import annotations

import functools
import sys

from devtools.modules import LIBRARY, MODULE_UTILS, ROOT, load_module, load_utils, run_module

ANSIBLE_CFG = ROOT / "ansible.cfg"

__all__ = ["LIBRARY", "MODULE_UTILS", "ROOT", "load_module", "load_utils", "module_docs", "run_module", "sys"]


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
