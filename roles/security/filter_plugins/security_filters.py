# Filters of the security role (emergency-security-breach): validation of the addresses to block and of the
# API keys to revoke, parsing of nftables JSON, log-line selection by network, and an HS256 token for the
# JWT rotation check when no login account is configured. They run on the controller; Python's ipaddress
# does the address work (ansible.utils.ipaddr needs netaddr, which the venv does not carry).
from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import re

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
V4_IN_TEXT = re.compile(r"(?<![0-9.])(\d{1,3}(?:\.\d{1,3}){3})(?![0-9])")
V6_IN_TEXT = re.compile(r"(?<![0-9A-Fa-f:.])((?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4})(?![0-9A-Fa-f:])")


def _as_list(value, keep_empty=False):
    """A list of trimmed strings from a list, a comma/space separated string (AWX surveys) or nothing.

    With ``keep_empty`` an empty entry of a comma-separated string ('a,,b', 'a,') stays in the list as '' (the
    inputs refuse it: a typo must not silently shrink the selection); a wholly empty string is still [].
    """
    if value is None:
        return []
    if isinstance(value, (str, bytes)):
        text = value.decode() if isinstance(value, bytes) else value
        text = text.strip()
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
            if isinstance(parsed, list):
                return _as_list(parsed, keep_empty)
        if keep_empty and text:
            out = []
            for part in text.split(","):
                words = part.split()
                out.extend(words if words else [""])
            return out
        return [part for part in re.split(r"[\s,]+", text) if part]
    if isinstance(value, (int, float)):
        return [str(value)]
    try:
        items = list(value)
    except TypeError:
        return [str(value)]
    return ["" if item is None else str(item).strip() for item in items if item is not None or keep_empty]


def _host_text(network):
    """'203.0.113.77' for a single address, '203.0.113.0/24' for a network."""
    if network.prefixlen == network.max_prefixlen:
        return str(network.network_address)
    return str(network)


def _protected_networks(protected):
    """[(network, reason)] from [{address, reason}] (entries that do not parse are ignored)."""
    out = []
    for item in protected or []:
        if isinstance(item, dict):
            address, reason = item.get("address"), item.get("reason") or "a protected address"
        else:
            address, reason = item, "a protected address"
        if address in (None, ""):
            continue
        try:
            network = ipaddress.ip_network(str(address).strip().split("%")[0], strict=False)
        except ValueError:
            continue
        out.append((network, reason))
    return out


def security_protected_list(groups):
    """[{address, reason}] from [{addresses, reason}, ...] (or [[addresses, reason], ...]); empty values and
    values that are not addresses (host names) are dropped, a zone suffix is cut."""
    out, seen = [], set()
    for group in groups or []:
        if isinstance(group, dict):
            addresses, reason = group.get("addresses"), group.get("reason")
        else:
            addresses, reason = group[0], group[1]
        for raw in _as_list(addresses):
            text = raw.strip().strip("[]").split("%")[0]
            try:
                network = ipaddress.ip_network(text, strict=False)
            except ValueError:
                continue
            key = (str(network), reason)
            if key not in seen:
                seen.add(key)
                out.append({"address": _host_text(network), "reason": reason})
    return out


def security_check_block_ips(entries, protected=None, min_prefix_v4=8, min_prefix_v6=32):
    """Validate every entry of block_ips; one result per entry, in order.

    Each result: ``{entry, ok, network, family, reason}``. ``network`` is the normalised address ('1.2.3.4') or
    network ('1.2.3.0/24') when the entry parses. An entry is refused when it is malformed, a whole address
    family (0.0.0.0/0, ::/0) or broader than the minimum prefix, unspecified, multicast, loopback, or when it
    is or contains a protected address (the controller's and the target's own addresses, ...).
    """
    results = []
    guards = _protected_networks(protected)
    for raw in _as_list(entries, keep_empty=True):
        entry = raw.strip()
        result = {"entry": raw, "ok": False, "network": None, "family": None, "reason": ""}
        results.append(result)
        if not entry:
            result["reason"] = "is empty (an empty entry in block_ips, e.g. a doubled or trailing comma)"
            continue
        if "%" in entry:
            result["reason"] = ("carries a zone id (%%%s): a firewall set holds addresses without one; a link-local "
                                "address is not a remote attacker" % entry.split("%", 1)[1])
            continue
        try:
            loose = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            result["reason"] = "is not a valid IPv4/IPv6 address or CIDR network (hostnames are not accepted)"
            continue
        minimum = int(min_prefix_v4) if loose.version == 4 else int(min_prefix_v6)
        if loose.prefixlen == 0:
            result["reason"] = "would block every IPv%d address (the whole address family)" % loose.version
            continue
        if loose.prefixlen < minimum:
            result["reason"] = ("is broader than /%d (security_block_min_prefix_v%d); block smaller networks"
                                % (minimum, loose.version))
            continue
        try:
            network = ipaddress.ip_network(entry, strict=True)
        except ValueError:
            result["reason"] = ("has host bits set: block the address %s or the network %s"
                                % (entry.split("/")[0], loose))
            continue
        result["network"] = _host_text(network)
        result["family"] = "ipv%d" % network.version
        mapped = getattr(network.network_address, "ipv4_mapped", None)
        if network.network_address.is_unspecified:
            result["reason"] = "is the unspecified address, not a client"
        elif network.is_multicast:
            result["reason"] = "is a multicast address, not a client"
        elif network.overlaps(LOOPBACK[network.version == 6]) or (mapped is not None and mapped.is_loopback):
            inside = mapped is not None or network.subnet_of(LOOPBACK[network.version == 6])
            result["reason"] = ("is a loopback address" if inside else "contains loopback addresses") + (
                " (127.0.0.0/8, ::1): blocking it breaks the host's own services")
        elif mapped is not None:
            result["reason"] = ("is an IPv4-mapped IPv6 address: an IPv6 rule would not stop IPv4 traffic from %s; "
                                "give the IPv4 address itself" % mapped)
        elif network.is_link_local:
            result["reason"] = ("is link-local (fe80::/10, 169.254.0.0/16): only the local segment uses it, "
                                "not a remote attacker")
        else:
            for guard, reason in guards:
                if guard.version == network.version and network.overlaps(guard):
                    if network == guard or network.subnet_of(guard):
                        result["reason"] = "is %s" % reason
                    else:
                        result["reason"] = "contains %s (%s)" % (_host_text(guard), reason)
                    break
            else:
                result["ok"] = True
                result["reason"] = "ok"
    return results


def security_refusal_message(results):
    """One sentence naming every refused entry and why ('' when none is refused)."""
    refused = [r for r in results or [] if not r.get("ok")]
    if not refused:
        return ""
    parts = ["'%s' %s" % (r["entry"], r["reason"]) for r in refused]
    return "refusing to block: " + "; ".join(parts) + ". Nothing was changed; fix block_ips and run again."


def security_to_networks(results):
    """The distinct accepted networks, in the order given."""
    seen, out = set(), []
    for r in results or []:
        if r.get("ok") and r.get("network") and r["network"] not in seen:
            seen.add(r["network"])
            out.append(r["network"])
    return out


def security_by_family(networks, family):
    """Networks of one family ('ipv4' or 'ipv6')."""
    version = 4 if str(family).endswith("4") else 6
    return [n for n in networks or [] if ipaddress.ip_network(n, strict=False).version == version]


def _nft_elements(elem):
    out = []
    for item in elem or []:
        if isinstance(item, str):
            out.append(ipaddress.ip_network(item, strict=False))
        elif isinstance(item, dict):
            if "prefix" in item:
                prefix = item["prefix"]
                out.append(ipaddress.ip_network("%s/%s" % (prefix["addr"], prefix["len"]), strict=False))
            elif "range" in item:
                first, last = (ipaddress.ip_address(a) for a in item["range"])
                out.extend(ipaddress.summarize_address_range(first, last))
            elif "elem" in item:
                out.extend(_nft_elements([item["elem"].get("val")]))
    return out


def security_nft_set_elements(text):
    """The elements of the set(s) in ``nft -j list set ...`` output, as address/network strings."""
    if not text:
        return []
    data = json.loads(text)
    out = []
    for obj in data.get("nftables", []):
        if "set" in obj:
            out.extend(_host_text(n) for n in _nft_elements(obj["set"].get("elem")))
    return out


def security_not_covered(networks, existing):
    """The networks that no existing element already covers (equal, or inside a blocked network)."""
    have = [ipaddress.ip_network(e, strict=False) for e in existing or []]
    out = []
    for text in networks or []:
        net = ipaddress.ip_network(text, strict=False)
        if not any(h.version == net.version and net.subnet_of(h) for h in have):
            out.append(text)
    return out


def security_log_patterns(networks):
    """Case-insensitive regular expressions that find log lines naming an address of the networks.

    Exact for single addresses; for a network, a pattern for its fixed leading octets (IPv4) or any IPv6-looking
    token, refined afterwards by ``security_lines_in``.
    """
    patterns = []
    for text in networks or []:
        net = ipaddress.ip_network(text, strict=False)
        if net.version == 4:
            if net.prefixlen == 32:
                patterns.append(r"(?<![0-9.])%s(?![0-9])" % re.escape(str(net.network_address)))
            else:
                octets = str(net.network_address).split(".")[: net.prefixlen // 8]
                rest = 4 - len(octets)
                patterns.append(r"(?<![0-9.])" + r"\.".join([re.escape(o) for o in octets] + [r"\d{1,3}"] * rest)
                                + r"(?![0-9])")
        elif net.prefixlen == 128:
            patterns.append(r"(?<![0-9a-f:])%s(?![0-9a-f:])" % re.escape(net.network_address.compressed))
        elif net.prefixlen >= 16:
            first = net.network_address.exploded.split(":")[0].lstrip("0") or "0"
            patterns.append(r"(?<![0-9a-f:])%s:[0-9a-f:]*" % first)
        else:
            patterns.append(V6_IN_TEXT.pattern)
    return list(dict.fromkeys(patterns))


def security_lines_in(lines, networks):
    """The lines that name an address inside one of the networks."""
    nets = [ipaddress.ip_network(n, strict=False) for n in networks or []]
    out = []
    for line in lines or []:
        for token in V4_IN_TEXT.findall(line) + V6_IN_TEXT.findall(line):
            try:
                address = ipaddress.ip_address(token)
            except ValueError:
                continue
            if any(address.version == n.version and address in n for n in nets):
                out.append(line)
                break
    return out


def security_evidence_files(logs_result, auth_patterns=None, networks=None):
    """The evidence files to write and a summary, from one compose_logs result.

    compose_logs searched for the authentication-failure patterns and the blocked addresses at once; here each kept
    line is sorted into ``logs/<service>-auth-failures.log`` (it matches an auth pattern) and/or
    ``logs/<service>-blocked-addresses.log`` (an address inside one of the networks really appears in it).
    Returns ``{files: [{path, lines}], summary: {service: {...}}, lines: distinct lines kept}``.
    """
    auth = [re.compile(p, re.IGNORECASE) for p in auth_patterns or []]
    files, summary, total = [], {}, 0
    for service, data in sorted(((logs_result or {}).get("logs") or {}).items()):
        matches = list(data.get("matches") or [])
        auth_lines = [line for line in matches if any(r.search(line) for r in auth)]
        address_lines = security_lines_in(matches, networks) if networks else []
        total += len(set(auth_lines) | set(address_lines))
        files.append({"path": "logs/%s-auth-failures.log" % service, "lines": auth_lines})
        if networks:
            files.append({"path": "logs/%s-blocked-addresses.log" % service, "lines": address_lines})
        summary[service] = {
            "containers": data.get("containers") or [],
            "lines_scanned": data.get("lines_scanned"),
            "matching_lines": data.get("match_count"),
            "matching_lines_kept": len(matches),
            "auth_failure_lines": len(auth_lines),
            "blocked_address_lines": len(address_lines),
            "pattern_counts": data.get("pattern_counts") or {},
            "errors": data.get("errors") or [],
        }
    return {"files": files, "summary": summary, "lines": total}


def security_key_selection(value, min_glob_prefix=4):
    """Parse revoke_api_keys: ``{all, entries, errors}``.

    'all' (alone) selects every key; otherwise each entry is a key id (digits), a key prefix (matched exactly
    against the key_prefix column) or a prefix glob ending in '*' with at least ``min_glob_prefix`` characters
    before the '*' ('a*' is refused: it would revoke nearly every key by accident).
    """
    entries = _as_list(value, keep_empty=True)
    result = {"all": False, "entries": [], "errors": []}
    if any(e.lower() == "all" for e in entries):
        if len(entries) > 1:
            result["errors"].append("revoke_api_keys=all cannot be combined with other entries")
        else:
            result["all"] = True
        return result
    for entry in entries:
        if not entry:
            result["errors"].append("an entry is empty (a doubled or trailing comma?)")
        elif entry.strip("*") == "":
            result["errors"].append("'%s' would select every key: say revoke_api_keys=all" % entry)
        elif "*" in entry[:-1]:
            result["errors"].append("'%s': only a trailing * is supported" % entry)
        elif entry.endswith("*") and len(entry) - 1 < int(min_glob_prefix):
            result["errors"].append("'%s' is too broad: a key prefix glob needs at least %d characters before the *"
                                    " (say revoke_api_keys=all to revoke every key)" % (entry, int(min_glob_prefix)))
        elif not re.match(r"^[\x21-\x7e]+$", entry):
            result["errors"].append("'%s' is not a key id or key prefix" % entry)
        elif entry not in result["entries"]:
            result["entries"].append(entry)
    return result


def security_jwt_hs256(claims, secret):
    """An HS256 JWT for the claims (the rotation check signs one token with the old and one with the new secret)."""
    def b64(raw):
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = b64(json.dumps(claims, separators=(",", ":")).encode())
    signature = hmac.new(str(secret).encode(), ("%s.%s" % (header, body)).encode(), hashlib.sha256).digest()
    return "%s.%s.%s" % (header, body, b64(signature))


def security_env_value(text, key):
    """The value of KEY=value in an env file's text (None when absent); quotes around the value are removed."""
    for line in (text or "").splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or "=" not in stripped:
            continue
        name, _, value = stripped.partition("=")
        if name.strip() == key:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            return value
    return None


def security_choose_firewall(backend, ufw=None, nft=None, iptables=None):
    """The firewall to block with: 'nftables', 'iptables', 'ufw' or 'none'.

    ``ufw``/``nft``/``iptables`` are the registered results of probing each tool (``{rc, stdout}``; skipped or
    missing = not available). ``auto`` prefers the nftables table, whose forward chain also stops traffic to
    Docker-published ports (DNAT keeps the source address; the chain runs before Docker's and ufw's filter chains),
    then iptables (DOCKER-USER when Docker manages iptables), and only then an active ufw: ufw's rules come after
    Docker's accept rules in FORWARD and do not stop traffic to published ports.
    """
    def ok(res):
        return isinstance(res, dict) and res.get("rc") == 0 and not res.get("skipped")

    ufw_active = ok(ufw) and "Status: active" in str(ufw.get("stdout") or "")
    backend = str(backend or "auto")
    if backend == "auto":
        if ok(nft):
            return "nftables"
        if ok(iptables):
            return "iptables"
        return "ufw" if ufw_active else "none"
    if backend == "ufw":
        return "ufw" if ok(ufw) else "none"
    if backend in ("nftables", "iptables"):
        return backend if ok(nft if backend == "nftables" else iptables) else "none"
    return "none"


def _rule_drops_from(expr):
    """The set names ('@blocked_v4') a rule drops packets from (source address match + drop verdict)."""
    exprs = expr or []
    if not any(isinstance(e, dict) and "drop" in e for e in exprs):
        return []
    out = []
    for e in exprs:
        match = e.get("match") if isinstance(e, dict) else None
        if not match or match.get("op") not in ("==", "in"):
            continue
        left = (match.get("left") or {}).get("payload") or {}
        if left.get("field") == "saddr" and isinstance(match.get("right"), str):
            out.append(match["right"])
    return out


def security_nft_coverage(text):
    """What the breach table really blocks, from ``nft -j list table inet T``.

    ``{table, chains: [{chain, hook, priority, policy, drops_from}], hooks: [hooks with a drop rule],
    addresses: [set elements], forward: bool, input: bool}``.
    """
    if not text:
        return {"table": None, "chains": [], "hooks": [], "addresses": [], "forward": False, "input": False,
                "summary": "no breach table"}
    data = json.loads(text)
    table, chains, rules = None, {}, {}
    for obj in data.get("nftables", []):
        if "table" in obj:
            table = "%s %s" % (obj["table"].get("family"), obj["table"].get("name"))
        elif "chain" in obj:
            c = obj["chain"]
            chains[c["name"]] = {"chain": c["name"], "hook": c.get("hook"), "priority": c.get("prio"),
                                 "policy": c.get("policy"), "drops_from": []}
        elif "rule" in obj:
            r = obj["rule"]
            rules.setdefault(r.get("chain"), []).extend(_rule_drops_from(r.get("expr")))
    for name, sets in rules.items():
        if name in chains:
            chains[name]["drops_from"] = sorted(set(sets))
    hooks = sorted({c["hook"] for c in chains.values() if c["hook"] and c["drops_from"]})
    addresses = security_nft_set_elements(text)
    dropping = [c for c in (chains[n] for n in sorted(chains)) if c["drops_from"] and c["hook"]]
    summary = "table %s drops packets from %s (%s) in %s: %s" % (
        table, ", ".join(sorted({s for c in dropping for s in c["drops_from"]})) or "no set",
        ", ".join(addresses) or "no address",
        " and ".join("chain %s (hook %s, priority %s)" % (c["chain"], c["hook"], c["priority"]) for c in dropping)
        or "no chain",
        ("traffic to this host and traffic forwarded to containers (Docker-published ports included: DNAT keeps "
         "the source address, and the chain runs before the filter chains of Docker and ufw at priority 0)")
        if "forward" in hooks else "traffic to this host only, NOT traffic forwarded to containers")
    return {"table": table, "chains": [chains[n] for n in sorted(chains)], "hooks": hooks, "addresses": addresses,
            "forward": "forward" in hooks, "input": "input" in hooks, "summary": summary}


def security_backend_targets(port_reads, host, scheme="http"):
    """[{container, port, url}] from the results of reading each backend container's port file (a looped command
    task: item = container name, stdout = port). ``port``/``url`` are None when the port could not be read."""
    out = []
    for res in (port_reads or {}).get("results", []) if isinstance(port_reads, dict) else port_reads or []:
        text = str(res.get("stdout") or "").strip()
        port = int(text) if res.get("rc") == 0 and text.isdigit() and 0 < int(text) < 65536 else None
        out.append({"container": res.get("item"), "port": port,
                    "url": "%s://%s:%d" % (scheme, host, port) if port else None})
    return out


def security_backend_probes(targets, path, old_token, new_token):
    """http_probe requests: the old and the new token against every backend reached directly (not via nginx)."""
    probes = []
    for t in targets or []:
        if not t.get("url"):
            continue
        for kind, token in (("old", old_token), ("new", new_token)):
            probes.append({"name": "%s %s" % (t["container"], kind), "url": t["url"] + path,
                           "headers": {"Authorization": "Bearer %s" % token}, "expect_status": [200, 401]})
    return probes


def security_judge_backends(targets, probes):
    """One verdict per backend replica: the token issued before the rotation must get 401 and the new one 200.

    ``{backends: [{container, port, old_token, new_token, status}], status, message}``; ``status`` is ok only when
    every replica was reached and judged ok, critical when one accepts the old token or refuses the new one,
    warning when one could not be reached directly (its port is unknown).
    """
    probes = (probes or {}).get("probes", probes) or {}
    backends, bad, unknown = [], [], []
    for t in targets or []:
        old = (probes.get("%s old" % t.get("container")) or {}).get("status", -1) if t.get("url") else None
        new = (probes.get("%s new" % t.get("container")) or {}).get("status", -1) if t.get("url") else None
        if old is None:
            status = "unverified"
            unknown.append(t.get("container"))
        elif old == 401 and new == 200:
            status = "ok"
        else:
            status = "critical"
            bad.append("%s (port %s): old token HTTP %s, new token HTTP %s"
                       % (t.get("container"), t.get("port"), old, new))
        backends.append({"container": t.get("container"), "port": t.get("port"), "old_token": old, "new_token": new,
                         "status": status})
    if not backends:
        return {"backends": [], "status": "critical", "message": "no backend replica was found to verify"}
    if bad:
        return {"backends": backends, "status": "critical",
                "message": "backend replica(s) not rotated: " + "; ".join(bad) + " (want 401 and 200)"}
    if unknown:
        return {"backends": backends, "status": "warning",
                "message": "could not reach %s directly (port unknown); the others reject the old token and accept "
                           "the new" % ", ".join(str(u) for u in unknown)}
    return {"backends": backends, "status": "ok",
            "message": "each of the %d backend replica(s), asked directly, rejects the old token (401) and accepts "
                       "the new one (200)" % len(backends)}


def security_judge_inputs(entries, key_sel, protected=None, min_prefix_v4=8, min_prefix_v6=32):
    """Judge every containment input at once: {refused, refusal, networks, check, actions, timeline}.

    entries: the parsed block_ips; key_sel: security_key_selection's result; protected: the addresses that must
    never be blocked (security_protected_list), None when there was nothing to block (then not gathered). One
    refused entry refuses the whole run: a critical breach_inputs check, an action and 'refused: ...' for the
    timeline; otherwise an ok breach_inputs check that names what is blocked and revoked."""
    key_sel = key_sel or {}
    results = security_check_block_ips(entries, protected or [], min_prefix_v4, min_prefix_v6)
    networks = security_to_networks(results)
    key_errors = list(key_sel.get("errors") or [])
    refusal = " ".join(part for part in [security_refusal_message(results)]
                       + ["refusing to revoke_api_keys: " + str(e) for e in key_errors] if part)
    if refusal:
        return {"refused": True, "refusal": refusal, "networks": networks,
                "check": {"name": "breach_inputs", "status": "critical",
                          "value": {"refused_ips": [r for r in results if not r.get("ok")], "key_errors": key_errors},
                          "threshold": "no whole address family, loopback, own or protected address, malformed entry",
                          "message": refusal},
                "actions": [{"name": "validate inputs", "changed": False, "detail": refusal}],
                "timeline": "refused: " + refusal}
    keys = "all" if key_sel.get("all") else list(key_sel.get("entries") or [])
    message = "to block: %s; API keys to revoke: %s" % (
        ", ".join(networks) or "nothing", keys if keys == "all" else (", ".join(keys) or "none"))
    if protected is not None:
        seen = []
        for item in protected:
            address = item.get("address") if isinstance(item, dict) else item
            if address not in seen:
                seen.append(address)
        message += "; protected: " + ", ".join(str(a) for a in seen)
    return {"refused": False, "refusal": "", "networks": networks,
            "check": {"name": "breach_inputs", "status": "ok", "value": {"block": networks, "revoke_api_keys": keys},
                      "threshold": None, "message": message},
            "actions": [],
            "timeline": "inputs accepted (%d address(es) to block)" % len(networks)}


def security_judge_rotation(rotation, backends, service="backend"):
    """Judge a verified JWT rotation: {check, detail, timeline}.

    rotation: what the rotation observed (old_token_before_rotation, old_token_after_rotation, new_login,
    new_token: HTTP statuses through the front door; verify_mode login|signed_token; verify_note; key, env_file,
    secret_length, replicas); backends: security_judge_backends' verdict on every replica asked directly.
    Critical unless the old token now gets 401 and the new one 200 (and no replica disagrees); ok only when the
    old token got 200 before, the planned verification ran and every replica was verified; else a warning."""
    r, b = rotation or {}, backends or {}
    login = r.get("verify_mode") == "login"
    before, after, new = r.get("old_token_before_rotation"), r.get("old_token_after_rotation"), r.get("new_token")
    note, verdict = r.get("verify_note") or "", b.get("message", "")
    if not (after == 401 and new == 200) or b.get("status") == "critical":
        status = "critical"
    elif before == 200 and not note and b.get("status") == "ok":
        status = "ok"
    else:
        status = "warning"
    if status == "ok":
        message = "JWT secret rotated: tokens issued before the rotation are rejected (401), new %s; %s" % (
            "logins work" if login else "tokens are accepted", verdict)
    elif status == "warning":
        why = note or (verdict if b.get("status") != "ok" else
                       "the old token already got HTTP %s before the rotation, so its rejection proves little" % before)
        message = "JWT secret rotated, the old token is rejected and new tokens work, but " + why + (
            "; " + verdict if note else "")
    else:
        message = ("JWT rotation NOT verified: through nginx the old token got HTTP %s (want 401), the new %s got "
                   "HTTP %s (want 200); %s" % (after, "login/token" if login else "token", new, verdict))
    detail = ("wrote a new %s-character %s into %s and recreated %s (%s replica(s)); token issued before the "
              "rotation: HTTP %s (was %s); %snew token: HTTP %s"
              % (r.get("secret_length"), r.get("key"), r.get("env_file"), service, r.get("replicas"), after, before,
                 ("new login: HTTP %s, " % r.get("new_login")) if login else "", new))
    timeline = ("rotated %s, %s recreated; old token 401, new %s 200" % (r.get("key"), service,
                                                                        "login" if login else "token")
                if status != "critical" else "rotated but NOT verified: old token %s, new token %s" % (after, new))
    return {"check": {"name": "breach_jwt_rotation", "status": status, "value": rotation,
                      "threshold": {"old_token_before": 200, "old_token_after": 401, "new_token": 200},
                      "message": message},
            "detail": detail, "timeline": timeline}


def security_outcome(checks, actions):
    """{status, summary} of the breach run: the worst check status (unknown counts as warning); the summary is
    what is not ok, else 'breach contained: ' and the actions that changed something."""
    statuses = [c.get("status") for c in checks or []]
    status = "critical" if "critical" in statuses else (
        "warning" if "warning" in statuses or "unknown" in statuses else "ok")
    bad = "; ".join(str(c.get("message")) for c in checks or [] if c.get("status") != "ok")
    changed = ", ".join(str(a.get("name")) for a in actions or [] if a.get("changed"))
    return {"status": status, "summary": bad or "breach contained: " + (changed or "nothing to change")}


class FilterModule:
    def filters(self):
        return {
            "security_as_list": _as_list,
            "security_protected_list": security_protected_list,
            "security_check_block_ips": security_check_block_ips,
            "security_refusal_message": security_refusal_message,
            "security_to_networks": security_to_networks,
            "security_by_family": security_by_family,
            "security_nft_set_elements": security_nft_set_elements,
            "security_not_covered": security_not_covered,
            "security_log_patterns": security_log_patterns,
            "security_lines_in": security_lines_in,
            "security_evidence_files": security_evidence_files,
            "security_key_selection": security_key_selection,
            "security_jwt_hs256": security_jwt_hs256,
            "security_env_value": security_env_value,
            "security_backend_targets": security_backend_targets,
            "security_choose_firewall": security_choose_firewall,
            "security_nft_coverage": security_nft_coverage,
            "security_backend_probes": security_backend_probes,
            "security_judge_backends": security_judge_backends,
            "security_judge_inputs": security_judge_inputs,
            "security_judge_rotation": security_judge_rotation,
            "security_outcome": security_outcome,
        }
