"""`runbook`: run the Equipment Marketplace runbook's playbooks through ansible-runner.

    runbook list [--json]
    runbook run health-check [-i inventory/demo] [-e key=value ...] [-e @vars.yml] [-e '{"json": 1}'] [--check]
                             [--tags a,b] [--skip-tags c] [--limit host] [-v] [--json]
    runbook --version

`-e key=value` keeps the value a string, as ansible-playbook does (`version=1.10` stays "1.10"), except the
booleans the playbook's inputs and its roles' argument specs declare (`confirm=true` becomes true); JSON and
`@file` (YAML or JSON) keep their own types. Shows progress per task, prints where the report and the artifacts
are, and exits with the playbook's status (0 ok, 2 a host failed, 4 unreachable: ansible-playbook's codes);
input the CLI cannot use (bad -e, an unknown playbook, a value the playbook's input spec refuses) exits 5 with
a message, before anything runs. With --json, stdout holds one JSON document and nothing else.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from runbook.catalogue import bool_options, inputs_spec, playbook_catalogue, project_version
from runbook.driver import DriverError, json_safe, resolve_playbook, run_playbook

EXIT_BAD_INPUT = 5  # ansible-playbook's code for bad or incomplete options


class UsageError(DriverError):
    """Input the CLI cannot use: exit 5."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        print("%s: error: %s" % (self.prog, message), file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


class _NoDatesLoader(yaml.SafeLoader):
    """YAML as ansible reads extra-vars files, but timestamps stay the strings they were written as."""


_NoDatesLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def parse_extravars(items: list[str], playbook: str | None = None) -> dict:
    """-e values as ansible-playbook takes them: key=value (strings; declared booleans typed), JSON, @file."""
    del playbook  # the booleans are named alike in every playbook (role-prefixed options, the public inputs)
    booleans = bool_options()
    out: dict = {}
    for item in items or []:
        if item.startswith("@"):
            path = Path(item[1:])
            if not path.is_file():
                raise UsageError(f"extra-vars file {path} does not exist")
            try:
                data = yaml.load(path.read_text(), Loader=_NoDatesLoader) or {}  # noqa: S506 (a SafeLoader)
            except (yaml.YAMLError, UnicodeDecodeError) as exc:
                raise UsageError(f"extra-vars file {path} is not valid YAML or JSON: "
                                 f"{str(exc).splitlines()[0]}") from None
            if not isinstance(data, dict):
                raise UsageError(f"extra-vars file {path} must hold a mapping")
            out.update(json_safe(data))
        elif item.lstrip().startswith(("{", "[")):
            try:
                data = json.loads(item)
            except ValueError as exc:
                raise UsageError(f"extra-vars {item[:80]!r} is not valid JSON: {exc}") from None
            if not isinstance(data, dict):
                raise UsageError(f"extra-vars {item[:80]!r} must be a JSON object")
            out.update(data)
        elif "=" in item:
            for key, value in _split_pairs(item):
                out[key] = _typed(key, value, booleans)
        else:
            raise UsageError(f"extra-vars {item[:80]!r} must be key=value, JSON or @file")
    return out


def _split_pairs(item: str) -> list[tuple[str, str]]:
    """`a=1 b=2` as ansible-playbook splits it (shell-like quoting); a value keeps spaces when quoted."""
    import shlex

    try:
        words = shlex.split(item) if (" " in item.partition("=")[2] or "'" in item or '"' in item) else [item]
    except ValueError as exc:
        raise UsageError(f"extra-vars {item[:80]!r}: {exc}") from None
    pairs = []
    for word in words:
        key, sep, value = word.partition("=")
        key = key.strip()
        if not sep or not key or not key.replace("_", "a").isalnum() or key[0].isdigit():
            raise UsageError(f"extra-vars {word[:80]!r} is not key=value with a variable name as key")
        pairs.append((key, value))
    return pairs


def _typed(key: str, value: str, booleans: frozenset[str]) -> object:
    if key in booleans:
        word = value.strip().lower()
        if word in ("true", "yes", "on", "1"):
            return True
        if word in ("false", "no", "off", "0"):
            return False
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="runbook", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"runbook {project_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    lst = sub.add_parser("list", help="list the playbooks: description, whether they change state, their inputs")
    lst.add_argument("--json", action="store_true", help="print the list as JSON")
    run = sub.add_parser("run", help="run a playbook")
    run.add_argument("playbook", help="playbook name (health-check) or path")
    run.add_argument("-i", "--inventory", help="inventory (default: inventory/demo)")
    run.add_argument("-e", "--extra-vars", action="append", default=[], help="key=value, JSON or @file; repeatable")
    run.add_argument("-C", "--check", action="store_true", help="check mode: describe, change nothing")
    run.add_argument("-t", "--tags", help="only these tags (comma-separated)")
    run.add_argument("--skip-tags", help="skip these tags (comma-separated)")
    run.add_argument("-l", "--limit", help="limit to these hosts")
    run.add_argument("-v", "--verbose", action="count", default=0)
    run.add_argument("-q", "--quiet", action="store_true", help="no per-task progress")
    run.add_argument("--json", action="store_true",
                     help="stdout holds only a JSON document (result and reports); progress goes to stderr")
    return parser


def cmd_list(args) -> int:
    rows = playbook_catalogue()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(r["name"]) for r in rows)
    for row in rows:
        mark = "changes state (confirm=true)" if row["changes_state"] else "read-only"
        inputs = (" [" + ", ".join(row["inputs"]) + "]") if row["inputs"] else ""
        print(f"{row['name']:<{width}}  {mark:<28}  {row['description']}{inputs}")
    return 0


def cmd_run(args) -> int:
    playbook = resolve_playbook(args.playbook)
    extravars = parse_extravars(args.extra_vars, playbook.stem)
    spec = inputs_spec()
    if playbook.stem in spec.PLAYBOOK_INPUTS:
        _, errors = spec.validate_inputs(playbook.stem, extravars)
        if errors:
            raise UsageError(spec.refusal(playbook.stem, errors))
    out = sys.stderr if args.json else sys.stdout
    result = run_playbook(str(playbook), inventory=args.inventory, extravars=extravars, check=args.check,
                          tags=args.tags, skip_tags=args.skip_tags, limit=args.limit,
                          verbosity=args.verbose, progress=not args.quiet, stream=out)
    if args.json:
        print(json.dumps({"playbook": result.playbook, "rc": result.rc, "status": result.status,
                          "duration_s": round(result.duration_s, 3), "artifact_dir": str(result.artifact_dir),
                          "report_paths": result.report_paths, "reports": result.reports},
                         indent=2, sort_keys=True, default=str))
        return result.rc
    print(file=out)
    print(f"{result.playbook}: {result.status} (rc {result.rc}) in {result.duration_s:.1f}s", file=out)
    for host, counts in sorted(_per_host(result.stats).items()):
        print(f"  {host}: " + " ".join(f"{k}={v}" for k, v in counts.items()), file=out)
    for host, path in sorted(result.report_paths.items()):
        rep = result.reports.get(host, {})
        print(f"  report [{host}]: {path} (status {rep.get('status')}, severity {rep.get('severity') or 'none'})",
              file=out)
    if not result.report_paths:
        print("  no report was written (the play stopped before its report step)", file=out)
    print(f"  artifacts: {result.artifact_dir}", file=out)
    return result.rc


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "list":
            return cmd_list(args)
        return cmd_run(args)
    except DriverError as exc:
        print(f"runbook: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("runbook: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # never a traceback for the operator; the artifacts keep the run's detail
        print(f"runbook: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def _per_host(stats: dict) -> dict[str, dict[str, int]]:
    hosts: dict[str, dict[str, int]] = {}
    for key in ("ok", "changed", "failures", "dark", "skipped", "rescued", "ignored"):
        for host, n in (stats.get(key) or {}).items():
            hosts.setdefault(host, {})[key] = n
    return hosts


if __name__ == "__main__":
    sys.exit(main())
