"""Each module's DOCUMENTATION matches its argument spec, and RETURN/EXAMPLES are valid YAML.

ansible-test sanity is not available outside a collection, so this does its validate-modules part
that matters most: options (names, types, defaults, choices, required, no_log-worthy aliases) equal
the argument_spec the module really uses. Every module exposes ``build_argument_spec()``.
"""
from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from tests.helpers.modules import LIBRARY, ROOT, load_module

MODULES = sorted(p.stem for p in LIBRARY.glob("*.py") if not p.name.startswith("_"))


def _compare(doc_opts: dict, spec: dict, path: str) -> list[str]:
    problems = []
    if set(doc_opts) != set(spec):
        problems.append(f"{path}: documented {sorted(set(doc_opts) - set(spec))} not in spec; "
                        f"in spec but undocumented {sorted(set(spec) - set(doc_opts))}")
    for name in set(doc_opts) & set(spec):
        d, s = doc_opts[name] or {}, spec[name]
        where = f"{path}.{name}"
        if not d.get("description"):
            problems.append(f"{where}: no description")
        if d.get("type", "str") != s.get("type", "str"):
            problems.append(f"{where}: type {d.get('type', 'str')} in docs, {s.get('type', 'str')} in spec")
        if d.get("default") != s.get("default"):
            problems.append(f"{where}: default {d.get('default')!r} in docs, {s.get('default')!r} in spec")
        if bool(d.get("required", False)) != bool(s.get("required", False)):
            problems.append(f"{where}: required differs")
        if sorted(map(str, d.get("choices") or [])) != sorted(map(str, s.get("choices") or [])):
            problems.append(f"{where}: choices differ")
        if d.get("elements") != s.get("elements"):
            problems.append(f"{where}: elements differ")
        if sorted(d.get("aliases") or []) != sorted(s.get("aliases") or []):
            problems.append(f"{where}: aliases differ")
        if s.get("options") or d.get("suboptions"):
            problems += _compare(d.get("suboptions") or {}, s.get("options") or {}, where)
    return problems


@pytest.mark.parametrize("name", MODULES)
def test_documentation_matches_argument_spec(name):
    mod = load_module(name)
    doc = yaml.safe_load(mod.DOCUMENTATION)
    assert doc["module"] == name
    assert doc.get("short_description")
    spec = mod.build_argument_spec()
    problems = _compare(doc.get("options") or {}, spec, name)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", MODULES)
def test_examples_and_return_are_yaml(name):
    mod = load_module(name)
    examples = yaml.safe_load(mod.EXAMPLES)
    assert isinstance(examples, list) and examples, "EXAMPLES must be a YAML list of tasks"
    ret = yaml.safe_load(mod.RETURN)
    assert isinstance(ret, dict) and ret
    for key, val in ret.items():
        assert val.get("description") and val.get("returned") and val.get("type"), f"RETURN.{key} incomplete"


@pytest.mark.parametrize("name", MODULES)
def test_ansible_doc_renders(name):
    proc = subprocess.run([str(ROOT / ".venv" / "bin" / "ansible-doc") if (ROOT / ".venv").exists() else "ansible-doc",
                           "-M", str(LIBRARY), name], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert name in proc.stdout and "OPTIONS" in proc.stdout


def test_every_module_has_check_mode():
    for name in MODULES:
        src = (LIBRARY / f"{name}.py").read_text()
        assert "supports_check_mode=True" in src, name


del sys
