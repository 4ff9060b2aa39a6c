"""Decisions of the ssl role that are not simple lookups: whether a failed renewal really left the previous
certificate in place (files and what nginx serves), judged from what the rescue observed."""
from __future__ import annotations

import re

_WS = re.compile(r"\s+")


def _pem(value) -> str:
    return _WS.sub("", value) if isinstance(value, str) else ""


def _file_state(stat_results) -> list:
    """[(path, exists, checksum)] from a looped ansible.builtin.stat result (or its .results list)."""
    if isinstance(stat_results, dict):
        stat_results = stat_results.get("results", [])
    out = []
    for res in stat_results or []:
        st = (res or {}).get("stat") or {}
        out.append((st.get("path") or res.get("item"), bool(st.get("exists")), st.get("checksum")))
    return out


def ssl_restore_verdict(before_files, after_files, before_served, after_served, installed=False):
    """Whether the previous certificate is back after a failed renewal.

    before_files/after_files: looped stat results (checksums) of the certificate and key taken before anything
    changed and after the rescue; before_served/after_served: the PEM nginx served before and serves after
    (None or '' when nothing answered); installed: the new files had been copied in before the failure.
    Returns {back, files_back, served_back, message}; served_back is None when nginx served nothing before
    (nothing to compare with)."""
    before, after = _file_state(before_files), _file_state(after_files)
    files_back = bool(before) and len(before) == len(after) and all(
        b[1] == a[1] and b[2] == a[2] for b, a in zip(before, after, strict=False))
    changed = [a[0] for b, a in zip(before, after, strict=False) if (b[1], b[2]) != (a[1], a[2])]
    was, now = _pem(before_served), _pem(after_served)
    served_back = None if not was else (now == was)
    parts = []
    if files_back:
        parts.append("the certificate and key files are the previous ones (checksums verified)"
                     if installed else "nothing was installed: the certificate and key files are unchanged")
    else:
        parts.append("the previous files are NOT back: %s differ%s from before the renewal"
                     % (", ".join(str(c) for c in changed) or "the files", "s" if len(changed) == 1 else ""))
    if served_back is None:
        parts.append("nginx served no certificate before the renewal" + (
            "" if now else " and serves none now"))
    elif served_back:
        parts.append("nginx serves the previous certificate")
    elif not now:
        parts.append("nginx does NOT answer over TLS now")
    else:
        parts.append("nginx does NOT serve the previous certificate")
    back = files_back and served_back is not False
    return {"back": back, "files_back": files_back, "served_back": served_back,
            "message": "; ".join(parts)}


class FilterModule:
    def filters(self):
        return {"ssl_restore_verdict": ssl_restore_verdict}
