#!/usr/bin/python
# Equipment Marketplace runbook: find, verify and prune the backups of a backup directory.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: backup_catalog
short_description: List, verify (quick) and prune (keep last / daily / weekly) the backups of a directory
description:
  - Reads a backup directory written by M(backup_dump). A backup is a C(<database>-<YYYYmmddTHHMMSSZ>) name
    with a C(.manifest.json) (the commit marker); temp files (C(.partial-*)) and backup files without a manifest
    are never taken as backups - they are reported as leftovers and removed by O(action=prune).
  - O(action=list) lists the backups, newest first. Read-only.
  - O(action=verify) picks the backup named by O(name), or the newest one (O(select=newest)), or the newest one
    that passes verification (O(select=newest_valid), trying older ones in turn), and checks that it exists, is
    fresh (O(max_age_hours)), matches the SHA-256 and size of its manifest and, with O(list_archive=true), that
    C(pg_restore -l) reads its table of contents. Read-only; the checks come back in the report shape.
  - O(action=prune) applies the retention (O(keep_last), O(keep_daily), O(keep_weekly); restic semantics -
    the newest backup of each of the N most recent days / ISO weeks that have backups) and removes leftovers.
    A backup is deleted manifest first, so a half-deleted one is never taken as a backup; a dump that a
    restore holds (C(flock)) is skipped. In check mode it lists what it would delete.
version_added: "1.0.0"
author: Equipment Marketplace operations
requirements:
  - docker (Docker SDK for Python) >= 7.1 when O(list_archive=true) and O(tools=container)
extends_documentation_fragment:
  - marketplace_backup
options:
  backup_dir:
    description: Directory of the backups.
    type: path
    required: true
  database:
    description: Only backups of this database (the name prefix). Default all.
    type: str
  action:
    description: What to do.
    type: str
    default: verify
    choices: [list, verify, prune]
  name:
    description:
      - For O(action=verify), the backup to verify (a name, a file name or a path in O(backup_dir)). Default
        chosen by O(select).
    type: str
  select:
    description:
      - Which backup O(action=verify) takes when O(name) is not given. C(newest) - the newest one, whatever
        its state; C(newest_valid) - the newest one that passes every verification.
    type: str
    default: newest
    choices: [newest, newest_valid]
  max_age_hours:
    description: The chosen backup must be at most this old (from its name's timestamp); 0 disables the check.
    type: float
    default: 0
  checksum:
    description: Verify the SHA-256 and size of the dump against the manifest.
    type: bool
    default: true
  list_archive:
    description: Also check that C(pg_restore -l) reads the archive's table of contents.
    type: bool
    default: false
  fail_on_error:
    description: Fail (naming the problem) when O(action=verify) finds no usable backup, instead of only reporting it.
    type: bool
    default: false
  keep_last:
    description: For O(action=prune), always keep this many newest backups.
    type: int
    default: 1
  keep_daily:
    description: For O(action=prune), keep the newest backup of each of this many most recent days with backups.
    type: int
    default: 7
  keep_weekly:
    description: For O(action=prune), keep the newest backup of each of this many most recent ISO weeks with backups.
    type: int
    default: 4
  protect:
    description: Backup names O(action=prune) never deletes (for example the one just taken).
    type: list
    elements: str
    default: []
  clean_leftovers:
    description: For O(action=prune), remove temp files and manifest-less files that no running backup holds.
    type: bool
    default: true
  leftover_min_age:
    description: Seconds a leftover must be old before it is removed (a second guard next to the flock).
    type: int
    default: 0
  tool_timeout:
    description: Seconds C(pg_restore -l) may run.
    type: int
    default: 600
notes:
  - O(container_db_user), O(container_socket_dir) and O(container_port) are not used; C(pg_restore -l) reads
    the archive without connecting to a server.
"""

EXAMPLES = r"""
- name: Quick verification of the newest backup
  backup_catalog:
    backup_dir: /var/backups/equipment-marketplace
    database: equipment_marketplace
    action: verify
    max_age_hours: 26

- name: Choose the newest backup that verifies, or fail naming why none does
  backup_catalog:
    backup_dir: /var/backups/equipment-marketplace
    database: equipment_marketplace
    select: newest_valid
    list_archive: true
    fail_on_error: true

- name: Keep 7 daily and 4 weekly backups
  backup_catalog:
    backup_dir: /var/backups/equipment-marketplace
    database: equipment_marketplace
    action: prune
    keep_daily: 7
    keep_weekly: 4
"""

RETURN = r"""
backups:
  description:
    - The backups found, newest first (C(name), C(database), C(created), C(size_bytes), C(dump_present),
      C(paths)).
  returned: always
  type: list
leftovers:
  description: Temp and manifest-less files (never taken as backups).
  returned: always
  type: list
selected:
  description: For O(action=verify), the backup chosen (its entry plus C(manifest) and C(age_hours)), or null.
  returned: always
  type: dict
rejected:
  description: For O(action=verify), backups that were tried and failed verification, with the reason.
  returned: always
  type: list
ok:
  description: For O(action=verify), whether the chosen backup passed every check.
  returned: always
  type: bool
problem:
  description: For O(action=verify), what is wrong when C(ok) is false (null otherwise).
  returned: always
  type: str
checks:
  description:
    - Checks in the report shape (C(backup_exists), C(backup_fresh), C(backup_checksum), C(backup_archive_list),
      C(backup_skipped), C(backup_retention)).
  returned: always
  type: list
kept:
  description:
    - For O(action=prune), the backups kept with the reasons (C(last), C(daily <day>), C(weekly <week>),
      C(protected)).
  returned: always
  type: dict
deleted:
  description: For O(action=prune), the backups deleted (would be, in check mode).
  returned: always
  type: list
skipped:
  description: For O(action=prune), backups that were due but left alone, with the reason.
  returned: always
  type: list
leftovers_removed:
  description: For O(action=prune), leftovers removed.
  returned: always
  type: list
leftovers_kept:
  description: For O(action=prune), leftovers left alone with the reason (in use, too young).
  returned: when leftovers were left alone
  type: list
"""

import os

from ansible.module_utils.marketplace_backup import (
    ToolError,
    clean_leftovers,
    list_archive,
    make_runner,
    normalize_name,
    public_entry,
    read_manifest,
    remove_backup,
    retention,
    runner_argument_spec,
    scan,
    utcnow,
    verify_file,
)
from ansible.module_utils.marketplace_common import json_safe
from ansible.module_utils.marketplace_module import MarketplaceModule


def build_argument_spec():
    spec = runner_argument_spec()
    spec["tool_timeout"]["default"] = 600
    spec.update(
        backup_dir=dict(type="path", required=True),
        database=dict(type="str"),
        action=dict(type="str", default="verify", choices=["list", "verify", "prune"]),
        name=dict(type="str"),
        select=dict(type="str", default="newest", choices=["newest", "newest_valid"]),
        max_age_hours=dict(type="float", default=0),
        checksum=dict(type="bool", default=True),
        list_archive=dict(type="bool", default=False),
        fail_on_error=dict(type="bool", default=False),
        keep_last=dict(type="int", default=1),
        keep_daily=dict(type="int", default=7),
        keep_weekly=dict(type="int", default=4),
        protect=dict(type="list", elements="str", default=[]),
        clean_leftovers=dict(type="bool", default=True),
        leftover_min_age=dict(type="int", default=0),
    )
    return spec


def _check(name, status, value, threshold, message):
    return dict(name=name, component="backup", status=status, value=value, threshold=threshold, message=message)


class Verifier:
    def __init__(self, module):
        self.module = module
        self.p = module.params
        self._runner = None

    def runner(self):
        if self._runner is None:
            self._runner = make_runner(self.p)
        return self._runner

    def verify(self, entry):
        """``(ok, problem, checks, manifest)`` for one entry (no freshness)."""
        checks = []
        try:
            manifest = read_manifest(entry["paths"]["manifest"])
        except (OSError, ValueError) as exc:
            problem = "manifest of %s is unreadable: %s" % (entry["name"], exc)
            return False, problem, [_check("backup_checksum", "critical", None, None, problem)], None
        if manifest.get("name") not in (None, entry["name"]):
            problem = "manifest of %s describes another backup (%s)" % (entry["name"], manifest.get("name"))
            return False, problem, [_check("backup_checksum", "critical", None, None, problem)], manifest
        if self.p["checksum"]:
            ok, reason, facts = verify_file(entry, manifest)
            checks.append(_check("backup_checksum", "ok" if ok else "critical", facts.get("sha256"),
                                 manifest.get("sha256"), "%s: %s" % (entry["name"], reason)))
            if not ok:
                return False, "backup %s fails verification: %s" % (entry["name"], reason), checks, manifest
        if self.p["list_archive"]:
            try:
                ok, facts = list_archive(self.runner(), entry["paths"]["dump"], timeout=self.p["tool_timeout"])
            except ToolError as exc:
                ok, facts = False, "cannot run pg_restore -l: %s" % exc
            expected = (manifest.get("toc") or {}).get("entries")
            if ok and expected is not None and facts["entries"] != expected:
                ok, facts = False, "pg_restore -l lists %d entries, the manifest recorded %d" % (
                    facts["entries"], expected)
            checks.append(_check("backup_archive_list", "ok" if ok else "critical",
                                 facts["entries"] if ok else None, expected,
                                 "%s: %s" % (entry["name"], ("pg_restore -l reads %d entries" % facts["entries"])
                                             if ok else facts)))
            if not ok:
                return False, "backup %s fails verification: %s" % (entry["name"], facts), checks, manifest
        return True, None, checks, manifest


def do_verify(module, entries):
    p = module.params
    verifier = Verifier(module)
    rejected, checks = [], []
    selected, problem, ok = None, None, False
    if p["name"]:
        try:
            wanted = normalize_name(p["name"], p["backup_dir"])
        except ValueError as exc:
            return None, [], [_check("backup_exists", "critical", None, None, str(exc))], False, str(exc)
        candidates = [e for e in entries if e["name"] == wanted]
        if not candidates:
            problem = "backup %s not found in %s (%s)" % (
                wanted, p["backup_dir"],
                "newest: %s" % entries[0]["name"] if entries else "no backups there")
            return None, [], [_check("backup_exists", "critical", None, wanted, problem)], False, problem
    else:
        candidates = entries if p["select"] == "newest_valid" else entries[:1]
        if not candidates:
            problem = "no backup%s in %s" % (" of %s" % p["database"] if p["database"] else "", p["backup_dir"])
            return None, [], [_check("backup_exists", "critical", 0, 1, problem)], False, problem
    for entry in candidates:
        ok, problem, entry_checks, manifest = verifier.verify(entry)
        if ok:
            selected = dict(public_entry(entry), manifest=manifest)
            checks.extend(entry_checks)
            break
        rejected.append({"name": entry["name"], "reason": problem})
        last_checks = entry_checks
    else:
        checks.extend(last_checks)
        if len(candidates) > 1:
            problem = "no backup passes verification: %s" % "; ".join(r["reason"] for r in rejected)
        selected = dict(public_entry(candidates[-1]), manifest=None) if len(candidates) == 1 else None
    exists_msg = "%d backup(s) in %s; newest %s" % (len(entries), p["backup_dir"], entries[0]["name"])
    checks.insert(0, _check("backup_exists", "ok", len(entries), 1, exists_msg))
    if rejected and ok:
        checks.append(_check("backup_skipped", "warning", [r["name"] for r in rejected], None,
                             "newer backups fail verification and were skipped: %s"
                             % "; ".join(r["reason"] for r in rejected)))
    if selected is not None:
        entry = next(e for e in entries if e["name"] == selected["name"])
        age_h = round((utcnow() - entry["time"]).total_seconds() / 3600.0, 2)
        selected["age_hours"] = age_h
        if p["max_age_hours"] and p["max_age_hours"] > 0:
            fresh = age_h <= p["max_age_hours"]
            checks.append(_check("backup_fresh", "ok" if fresh else "critical", age_h, p["max_age_hours"],
                                 "%s is %.1f h old (max %s h)" % (entry["name"], age_h, p["max_age_hours"])))
            if not fresh and ok:
                ok = False
                problem = "the newest usable backup %s is %.1f h old, more than %s h" % (
                    entry["name"], age_h, p["max_age_hours"])
    return selected, rejected, checks, ok, problem


def do_prune(module, entries, leftovers):
    p = module.params
    protect = set()
    for name in p["protect"]:
        try:
            protect.add(normalize_name(name))
        except ValueError:
            module.fail_json(msg="protect: %r is not a backup name" % name)
    keep, drop = retention(entries, p["keep_last"], p["keep_daily"], p["keep_weekly"])
    for name in protect:
        if name in drop:
            drop.remove(name)
            keep.setdefault(name, []).append("protected")
    deleted, skipped = [], []
    for name in drop:
        reason = remove_backup(p["backup_dir"], name, check_mode=module.check_mode)
        if reason:
            skipped.append({"name": name, "reason": reason})
        else:
            deleted.append(name)
    removed, kept_left = [], []
    if p["clean_leftovers"]:
        removed, kept_left = clean_leftovers(leftovers, p["leftover_min_age"], check_mode=module.check_mode)
    return keep, deleted, skipped, removed, kept_left


def main():
    module = MarketplaceModule(argument_spec=build_argument_spec(), supports_check_mode=True)
    p = module.params
    for opt in ("keep_last", "keep_daily", "keep_weekly", "leftover_min_age"):
        if p[opt] is not None and p[opt] < 0:
            module.fail_json(msg="%s must not be negative" % opt)
    if p["action"] == "prune" and p["keep_last"] + p["keep_daily"] + p["keep_weekly"] == 0:
        module.fail_json(msg="keep_last, keep_daily and keep_weekly are all 0: that would delete every backup")
    if not os.path.isdir(p["backup_dir"]) and p["action"] != "verify":
        module.exit_json(changed=False, backups=[], leftovers=[], selected=None, rejected=[], ok=False,
                         problem="backup directory %s does not exist" % p["backup_dir"], checks=[], kept={},
                         deleted=[], skipped=[], leftovers_removed=[])
    entries, leftovers = scan(p["backup_dir"], p["database"])
    result = dict(changed=False, backups=[public_entry(e) for e in entries],
                  leftovers=[{k: v for k, v in x.items() if k != "path"} for x in leftovers],
                  selected=None, rejected=[], ok=True, problem=None, checks=[], kept={}, deleted=[], skipped=[],
                  leftovers_removed=[])
    if p["action"] == "verify":
        try:
            selected, rejected, checks, ok, problem = do_verify(module, entries)
        except ToolError as exc:
            module.fail_json(msg=str(exc), **result)
        result.update(selected=selected, rejected=rejected, checks=checks, ok=ok, problem=problem)
        if not ok and p["fail_on_error"]:
            module.fail_json(msg=problem, **json_safe(result))
    elif p["action"] == "prune":
        keep, deleted, skipped, removed, kept_left = do_prune(module, entries, leftovers)
        result.update(kept=keep, deleted=deleted, skipped=skipped, leftovers_removed=removed,
                      changed=bool(deleted or removed))
        status = "warning" if skipped else "ok"
        result["checks"] = [_check(
            "backup_retention", status, len(entries) - len(deleted), None,
            "kept %d backup(s) (last %d, %d daily, %d weekly), %s %d%s%s" % (
                len(keep), p["keep_last"], p["keep_daily"], p["keep_weekly"],
                "would delete" if module.check_mode else "deleted", len(deleted),
                (": " + ", ".join(deleted)) if deleted else "",
                ("; skipped " + ", ".join("%s (%s)" % (s["name"], s["reason"]) for s in skipped)) if skipped else ""))]
        if kept_left:
            result["leftovers_kept"] = kept_left
    module.exit_json(**json_safe(result))


if __name__ == "__main__":
    main()
