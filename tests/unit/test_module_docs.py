"""Each module's DOCUMENTATION matches its argument spec, and RETURN/EXAMPLES are valid YAML.

ansible-test sanity is not available outside a collection, so this does its validate-modules part
that matters most: options (names, types, defaults, choices, required, no_log-worthy aliases) equal
the argument_spec the module really uses. Every module exposes ``build_argument_spec()``.

The shared connection options are documented once, in the doc fragments of doc_fragments/ (found through
``doc_fragment_plugins`` in ansible.cfg), and modules take them with ``extends_documentation_fragment``.
So the options compared are the MERGED ones: ansible's own ``get_docstring``/``add_fragments`` in-process,
and ``ansible-doc -j`` (the CLI, with our ansible.cfg) once for all modules.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers.modules import ANSIBLE_CFG, LIBRARY, ROOT, fragment_loader, load_module, module_docs

MODULES = sorted(p.stem for p in LIBRARY.glob("*.py") if not p.name.startswith("_"))
FRAGMENT_DIR = ROOT / "doc_fragments"
FRAGMENTS = sorted(p.stem for p in FRAGMENT_DIR.glob("*.py") if not p.name.startswith("_"))

# fragment -> (module_utils module, argument spec function, spec options the fragment leaves to each module)
FRAGMENT_SPECS = {
    "marketplace_postgres": ("marketplace_postgres", "postgres_common_argument_spec", set()),
    "marketplace_redis": ("marketplace_redis", "redis_argument_spec", set()),
    "marketplace_docker": ("marketplace_docker", "docker_argument_spec", {"services"}),
    "marketplace_backup": ("marketplace_backup", "runner_argument_spec", set()),
}

ANSIBLE_DOC = str(ROOT / ".venv" / "bin" / "ansible-doc") if (ROOT / ".venv").exists() else "ansible-doc"


def _ansible_doc(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, ANSIBLE_CONFIG=str(ANSIBLE_CFG), ANSIBLE_NOCOLOR="1")
    return subprocess.run([ANSIBLE_DOC, "-M", str(LIBRARY), *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=300)


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


def _fragment_doc(fragment: str) -> dict:
    cls = fragment_loader().get(fragment)
    assert cls is not None, f"doc fragment {fragment} not found through doc_fragment_plugins of {ANSIBLE_CFG}"
    return yaml.safe_load(cls.DOCUMENTATION)


@pytest.mark.parametrize("name", MODULES)
def test_documentation_matches_argument_spec(name):
    doc = module_docs(name)[0]  # fragments merged
    assert doc["module"] == name
    assert doc.get("short_description")
    spec = load_module(name).build_argument_spec()
    problems = _compare(doc.get("options") or {}, spec, name)
    assert not problems, "\n".join(problems)


def test_every_fragment_is_a_shared_spec():
    assert FRAGMENTS, f"no doc fragments in {FRAGMENT_DIR}"
    assert set(FRAGMENTS) == set(FRAGMENT_SPECS), "each doc fragment documents one shared argument spec"


@pytest.mark.parametrize("fragment", sorted(FRAGMENT_SPECS))
def test_fragment_matches_shared_argument_spec(fragment):
    """Checked on its own too: an option that every module re-documents would escape the merged check."""
    import importlib

    module_name, function, left_out = FRAGMENT_SPECS[fragment]
    spec = getattr(importlib.import_module("ansible.module_utils." + module_name), function)()
    spec = {k: v for k, v in spec.items() if k not in left_out}
    problems = _compare(_fragment_doc(fragment).get("options") or {}, spec, "fragment " + fragment)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", MODULES)
def test_no_option_repeats_its_fragment(name):
    """A module documents a fragment option itself only to change it (another default or meaning)."""
    raw = yaml.safe_load(load_module(name).DOCUMENTATION)
    fragments = raw.get("extends_documentation_fragment") or []
    own = raw.get("options") or {}
    for fragment in [fragments] if isinstance(fragments, str) else fragments:
        for option, entry in (_fragment_doc(fragment).get("options") or {}).items():
            assert own.get(option) != entry, f"{name}: option {option} repeats fragment {fragment} word for word"


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
    proc = _ansible_doc(name)
    assert proc.returncode == 0, proc.stderr
    assert name in proc.stdout and "OPTIONS" in proc.stdout
    assert "[WARNING]" not in proc.stdout + proc.stderr, proc.stderr  # e.g. a tuple constant at module level


def test_ansible_doc_json_merges_fragments():
    """The CLI with our ansible.cfg shows every module with exactly its argument spec's options."""
    proc = _ansible_doc("-j", *MODULES)
    assert proc.returncode == 0, proc.stderr
    docs = json.loads(proc.stdout)
    problems = []
    for name in MODULES:
        assert name in docs, f"ansible-doc -j did not return {name}"
        problems += _compare(docs[name]["doc"].get("options") or {}, load_module(name).build_argument_spec(), name)
    assert not problems, "\n".join(problems)


def test_ansible_config_validates():
    """ansible.cfg holds only settings ansible knows (callback_result_format, not result_format; no
    [callback_default] or [ssh_connection] section)."""
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-config"), "validate", "-t", "all"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "[ERROR]" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_ansible_doc_lists_modules():
    proc = _ansible_doc("-l")
    assert proc.returncode == 0, proc.stderr
    listed = {line.split()[0].removeprefix("ansible.legacy.") for line in proc.stdout.splitlines() if line.strip()}
    assert set(MODULES) <= listed, f"not listed: {sorted(set(MODULES) - listed)}"


def test_every_module_has_check_mode():
    for name in MODULES:
        src = (LIBRARY / f"{name}.py").read_text()
        assert "supports_check_mode=True" in src, name
