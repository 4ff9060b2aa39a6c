"""`runbook`: run the Equipment Marketplace runbook's playbooks through ansible-runner.

    runbook list
    runbook run health-check [-i inventory/demo] [-e key=value ...] [-e @vars.yml] [--check]
                             [--tags a,b] [--skip-tags c] [--limit host] [-v]

Shows progress per task, prints where the report and the artifacts are, and exits with the
playbook's status (0 ok, 2 a host failed, 4 unreachable, ...: ansible-playbook's codes).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from runbook.driver import PLAYBOOK_DIR, DriverError, run_playbook


def parse_extravars(items: list[str]) -> dict:
    out: dict = {}
    for item in items or []:
        if item.startswith("@"):
            path = Path(item[1:])
            if not path.is_file():
                raise DriverError(f"extra-vars file {path} does not exist")
            data = yaml.safe_load(path.read_text()) or {}
            if not isinstance(data, dict):
                raise DriverError(f"extra-vars file {path} must hold a mapping")
            out.update(data)
        elif item.lstrip().startswith("{"):
            try:
                out.update(json.loads(item))
            except ValueError as exc:
                raise DriverError(f"extra-vars {item!r} is not valid JSON: {exc}") from exc
        elif "=" in item:
            key, _, value = item.partition("=")
            if not key.strip():
                raise DriverError(f"extra-vars {item!r} has no name")
            # key=value as ansible-playbook takes it; YAML typing for true/false/numbers/lists.
            try:
                out[key.strip()] = yaml.safe_load(value) if value else ""
            except yaml.YAMLError:
                out[key.strip()] = value
        else:
            raise DriverError(f"extra-vars {item!r} must be key=value, JSON or @file")
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="runbook", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the playbooks")
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
    run.add_argument("--json", action="store_true", help="print the report(s) as JSON at the end")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "list":
        for pb in sorted(PLAYBOOK_DIR.glob("*.yml")):
            print(pb.stem)
        return 0
    try:
        extravars = parse_extravars(args.extra_vars)
        result = run_playbook(args.playbook, inventory=args.inventory, extravars=extravars, check=args.check,
                              tags=args.tags, skip_tags=args.skip_tags, limit=args.limit,
                              verbosity=args.verbose, progress=not args.quiet)
    except DriverError as exc:
        print(f"runbook: {exc}", file=sys.stderr)
        return 2
    print()
    print(f"{result.playbook}: {result.status} (rc {result.rc}) in {result.duration_s:.1f}s")
    for host, counts in sorted(_per_host(result.stats).items()):
        print(f"  {host}: " + " ".join(f"{k}={v}" for k, v in counts.items()))
    for host, path in sorted(result.report_paths.items()):
        rep = result.reports.get(host, {})
        print(f"  report [{host}]: {path} (status {rep.get('status')}, severity {rep.get('severity') or 'none'})")
    if not result.report_paths:
        print("  no report was written (the play stopped before its report step)")
    print(f"  artifacts: {result.artifact_dir}")
    if args.json:
        print(json.dumps(result.reports, indent=2, sort_keys=True))
    return result.rc


def _per_host(stats: dict) -> dict[str, dict[str, int]]:
    hosts: dict[str, dict[str, int]] = {}
    for key in ("ok", "changed", "failures", "dark", "skipped", "rescued", "ignored"):
        for host, n in (stats.get(key) or {}).items():
            hosts.setdefault(host, {})[key] = n
    return hosts


if __name__ == "__main__":
    sys.exit(main())
