"""backup_dump's files are owner-only, written by a real dump of the reference database (pg_dump in the
postgres container, into a directory it mounts)."""
from __future__ import annotations

import shutil
import stat

from tests.helpers import backups as bk
from tests.helpers.modules import run_module


def test_a_dump_into_a_directory_others_can_enter_is_0600_and_says_so(pg_params, stack_env):
    loose = bk.new_backup_dir("modes")
    loose.chmod(0o755)  # e.g. made by hand with the default umask
    try:
        r = run_module("backup_dump", {**pg_params, "database": bk.APP_DB, "backup_dir": str(loose),
                                       "count_tables": ["users"]})
        assert not r.get("failed"), r.get("msg")
        files = sorted(p.name for p in loose.iterdir())
        assert len(files) == 3
        assert {f: oct(stat.S_IMODE((loose / f).stat().st_mode)) for f in files} == {f: oct(0o600) for f in files}
        # the directory is the operator's: reported, not changed behind their back
        assert stat.S_IMODE(loose.stat().st_mode) == 0o755
        warn = next(c for c in r["checks"] if c["name"] == "backup_dir_mode")
        assert warn["status"] == "warning" and warn["value"] == "0755" and "chmod 0700" in warn["message"]
        assert stack_env["POSTGRES_PASSWORD"] not in r["_raw"]
    finally:
        shutil.rmtree(loose, ignore_errors=True)
