#!/usr/bin/python
# Equipment Marketplace runbook: copy backups to S3-compatible storage, verify them there, apply retention.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: backup_s3
short_description: Offsite copy of backups to S3-compatible storage, with remote checksum verification and retention
description:
  - Uploads backups written by M(backup_dump) (the dump, its C(.dump.sha256) and its manifest, manifest last) to
    O(bucket) under O(prefix), with the SHA-256 of the manifest sent as the S3 checksum - the server refuses
    bytes that do not match it. Large dumps go up in parts (O(multipart_threshold), O(part_size)), each part
    with its own SHA-256; the whole file's SHA-256 is compared with the manifest before the upload completes.
  - A backup already present remotely with the right size and checksum is not uploaded again.
  - Every uploaded (or already present) backup is then verified remotely - O(verify=checksum) compares the
    size, the C(sha256) metadata and the checksum S3 stored (full-object or multipart composite) with the
    manifest; servers that store no checksum are verified by downloading. O(verify=download) always downloads
    and hashes.
  - With O(keep_last) / O(keep_daily) / O(keep_weekly) set, the same retention as M(backup_catalog) is applied to
    the remote copies (manifest deleted first); objects of interrupted uploads (a dump without a manifest) older
    than O(orphan_min_age) are removed too.
  - Credentials come from O(access_key) / O(secret_key) (never shown) or boto3's usual chain (environment,
    profile, instance role).
  - Check mode lists what would be uploaded and deleted and changes nothing.
version_added: "1.0.0"
author: Equipment Marketplace operations
requirements:
  - boto3 >= 1.34
options:
  backup_dir:
    description: Local backup directory.
    type: path
    required: true
  database:
    description: Only backups of this database.
    type: str
  names:
    description: Backups to upload. Default the newest local backup.
    type: list
    elements: str
    default: []
  upload:
    description: Upload (false - only verify what is there and apply retention).
    type: bool
    default: true
  bucket:
    description: Bucket name.
    type: str
    required: true
  prefix:
    description: Key prefix (a trailing C(/) is added when missing).
    type: str
    default: ""
  endpoint_url:
    description: Endpoint of an S3-compatible service (MinIO, Ceph, ...); default AWS.
    type: str
  region:
    description: Region.
    type: str
    default: us-east-1
  access_key:
    description: Access key id. Falls back to E(AWS_ACCESS_KEY_ID). Never shown.
    type: str
  secret_key:
    description: Secret access key. Falls back to E(AWS_SECRET_ACCESS_KEY). Never shown.
    type: str
  session_token:
    description: Session token. Falls back to E(AWS_SESSION_TOKEN). Never shown.
    type: str
  validate_certs:
    description: Verify the endpoint's TLS certificate.
    type: bool
    default: true
  addressing_style:
    description: Bucket addressing (C(path) for most S3-compatible servers).
    type: str
    default: auto
    choices: [auto, path, virtual]
  multipart_threshold:
    description: Files at least this large (bytes) are uploaded in parts.
    type: int
    default: 67108864
  part_size:
    description: Size of each part in bytes (S3's minimum is 5 MiB).
    type: int
    default: 16777216
  verify:
    description: How the remote copy is verified.
    type: str
    default: checksum
    choices: [checksum, download]
  storage_class:
    description: Storage class of the uploaded objects (for example C(STANDARD_IA)).
    type: str
  server_side_encryption:
    description: C(AES256) or C(aws:kms).
    type: str
  keep_last:
    description:
      - Remote retention - keep this many newest backups. Retention runs only when one of the keep options is set.
    type: int
  keep_daily:
    description: Remote retention - newest backup of each of this many most recent days with backups.
    type: int
  keep_weekly:
    description: Remote retention - newest backup of each of this many most recent ISO weeks with backups.
    type: int
  orphan_min_age:
    description: Seconds an object without a manifest (an interrupted upload) must be old before retention removes it.
    type: int
    default: 3600
  connect_timeout:
    description: Seconds to connect.
    type: int
    default: 10
  read_timeout:
    description: Seconds to wait for a response.
    type: int
    default: 120
  retries:
    description: Retries of a failed request.
    type: int
    default: 3
"""

EXAMPLES = r"""
- name: Copy the newest backup offsite and keep 7 daily + 4 weekly there
  backup_s3:
    backup_dir: /var/backups/equipment-marketplace
    database: equipment_marketplace
    endpoint_url: https://s3.eu-central-1.amazonaws.com
    bucket: marketplace-backups
    prefix: equipment-marketplace/
    access_key: "{{ marketplace_backup_s3_access_key }}"
    secret_key: "{{ marketplace_backup_s3_secret_key }}"
    keep_last: 1
    keep_daily: 7
    keep_weekly: 4
"""

RETURN = r"""
uploaded:
  description:
    - Per backup - C(name), C(key), C(size_bytes), C(sha256), C(uploaded) (false when it was already there),
      C(parts), C(verified_by).
  returned: always
  type: list
remote_backups:
  description: Names of the backups present remotely after the run, newest first.
  returned: always
  type: list
kept:
  description: Remote backups kept by the retention, with the reasons.
  returned: always
  type: dict
deleted:
  description: Remote backups deleted (would be, in check mode).
  returned: always
  type: list
orphans_removed:
  description: Keys of interrupted uploads removed.
  returned: always
  type: list
location:
  description: C(s3://bucket/prefix) (with the endpoint).
  returned: always
  type: str
checks:
  description: Checks in the report shape (C(offsite_upload), C(offsite_verify), C(offsite_retention)).
  returned: always
  type: list
"""

import base64
import datetime
import hashlib
import os
import traceback

from ansible.module_utils.basic import env_fallback, missing_required_lib
from ansible.module_utils.marketplace_backup import (
    DUMP_SUFFIX,
    MANIFEST_SUFFIX,
    SUM_SUFFIX,
    normalize_name,
    parse_name,
    read_manifest,
    retention,
    scan,
    verify_file,
)
from ansible.module_utils.marketplace_common import json_safe
from ansible.module_utils.marketplace_module import MarketplaceModule

BOTO3_IMPORT_ERROR = None
try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError
    HAS_BOTO3 = True
except ImportError:  # pragma: no cover - depends on the target
    HAS_BOTO3 = False
    BOTO3_IMPORT_ERROR = traceback.format_exc()

    class BotoCoreError(Exception):
        pass

    class ClientError(Exception):
        pass


def build_argument_spec():
    return dict(
        backup_dir=dict(type="path", required=True),
        database=dict(type="str"),
        names=dict(type="list", elements="str", default=[]),
        upload=dict(type="bool", default=True),
        bucket=dict(type="str", required=True),
        prefix=dict(type="str", default=""),
        endpoint_url=dict(type="str"),
        region=dict(type="str", default="us-east-1"),
        access_key=dict(type="str", no_log=True, fallback=(env_fallback, ["AWS_ACCESS_KEY_ID"])),
        secret_key=dict(type="str", no_log=True, fallback=(env_fallback, ["AWS_SECRET_ACCESS_KEY"])),
        session_token=dict(type="str", no_log=True, fallback=(env_fallback, ["AWS_SESSION_TOKEN"])),
        validate_certs=dict(type="bool", default=True),
        addressing_style=dict(type="str", default="auto", choices=["auto", "path", "virtual"]),
        multipart_threshold=dict(type="int", default=64 * 1024 * 1024),
        part_size=dict(type="int", default=16 * 1024 * 1024),
        verify=dict(type="str", default="checksum", choices=["checksum", "download"]),
        storage_class=dict(type="str"),
        server_side_encryption=dict(type="str"),
        keep_last=dict(type="int"),
        keep_daily=dict(type="int"),
        keep_weekly=dict(type="int"),
        orphan_min_age=dict(type="int", default=3600),
        connect_timeout=dict(type="int", default=10),
        read_timeout=dict(type="int", default=120),
        retries=dict(type="int", default=3),
    )


def b64(digest_bytes):
    return base64.b64encode(digest_bytes).decode()


def _check(name, status, value, threshold, message):
    return dict(name=name, component="offsite", status=status, value=value, threshold=threshold, message=message)


class Offsite:
    def __init__(self, module):
        self.module = module
        self.p = module.params
        prefix = self.p["prefix"] or ""
        self.prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        self.location = "s3://%s/%s%s" % (self.p["bucket"], self.prefix,
                                          " at %s" % self.p["endpoint_url"] if self.p["endpoint_url"] else "")
        cfg = Config(connect_timeout=self.p["connect_timeout"], read_timeout=self.p["read_timeout"],
                     retries={"max_attempts": self.p["retries"] + 1, "mode": "standard"},
                     s3={"addressing_style": self.p["addressing_style"]})
        self.s3 = boto3.client("s3", endpoint_url=self.p["endpoint_url"] or None, region_name=self.p["region"],
                               aws_access_key_id=self.p["access_key"] or None,
                               aws_secret_access_key=self.p["secret_key"] or None,
                               aws_session_token=self.p["session_token"] or None,
                               verify=self.p["validate_certs"], config=cfg)

    def key(self, name, suffix):
        return self.prefix + name + suffix

    def error(self, what, exc):
        if isinstance(exc, ClientError):
            err = exc.response.get("Error", {})
            text = "%s: %s" % (err.get("Code", "error"), err.get("Message", "") or "")
        else:
            text = str(exc) or exc.__class__.__name__
        for secret in (self.p["secret_key"], self.p["session_token"]):
            if secret:
                text = text.replace(secret, "********")
        return "%s (%s): %s" % (what, self.location, " ".join(text.split())[:400])

    # -- remote listing ----------------------------------------------------------------------------------
    def list_remote(self):
        objects = {}
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.p["bucket"], Prefix=self.prefix):
            for obj in page.get("Contents", []) or []:
                objects[obj["Key"]] = obj
        backups, orphans = {}, []
        for key, obj in objects.items():
            fname = key[len(self.prefix):]
            if "/" in fname:
                continue
            for suffix in (MANIFEST_SUFFIX, SUM_SUFFIX, DUMP_SUFFIX):
                if fname.endswith(suffix):
                    stem = fname[: -len(suffix)]
                    break
            else:
                continue
            parsed = parse_name(stem)
            if parsed is None or (self.p["database"] and parsed[0] != self.p["database"]):
                continue
            if suffix == MANIFEST_SUFFIX:
                backups[stem] = {"name": stem, "time": parsed[1], "seq": parsed[2],
                                 "has_dump": self.key(stem, DUMP_SUFFIX) in objects}
            elif self.key(stem, MANIFEST_SUFFIX) not in objects:
                orphans.append(obj)
        return backups, orphans, objects

    # -- verification -------------------------------------------------------------------------------------
    def remote_matches(self, name, manifest, part_digests=None):
        """``(ok, how_or_reason)`` for the remote dump of ``name`` against the manifest."""
        key = self.key(name, DUMP_SUFFIX)
        try:
            head = self.s3.head_object(Bucket=self.p["bucket"], Key=key, ChecksumMode="ENABLED")
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in ("404", "NoSuchKey", "NotFound"):
                return False, "missing"
            raise
        size = head.get("ContentLength")
        if size != manifest["size_bytes"]:
            return False, "remote size %s, the manifest records %s" % (size, manifest["size_bytes"])
        meta = (head.get("Metadata") or {}).get("sha256")
        if meta and meta != manifest["sha256"]:
            return False, "remote sha256 metadata %s... differs from the manifest %s..." % (
                meta[:12], manifest["sha256"][:12])
        remote = head.get("ChecksumSHA256")
        if self.p["verify"] == "download" or not remote:
            digest = hashlib.sha256()
            body = self.s3.get_object(Bucket=self.p["bucket"], Key=key)["Body"]
            for chunk in iter(lambda: body.read(4 * 1024 * 1024), b""):
                digest.update(chunk)
            if digest.hexdigest() != manifest["sha256"]:
                return False, "downloaded copy has sha256 %s..., the manifest records %s..." % (
                    digest.hexdigest()[:12], manifest["sha256"][:12])
            return True, "download"
        remote_b64 = remote.split("-")[0]
        if remote_b64 == b64(bytes.fromhex(manifest["sha256"])):
            return True, "checksum"
        if part_digests is None:
            part_digests = self.local_part_digests(name, head)
        if part_digests and remote_b64 == b64(hashlib.sha256(b"".join(part_digests)).digest()):
            return True, "checksum (multipart composite of %d parts)" % len(part_digests)
        return False, "remote checksum %s does not match the manifest's sha256" % remote

    def local_part_digests(self, name, head):
        """Part digests of the local dump for the part layout of the remote object (for a composite checksum)."""
        parts = None
        try:
            attrs = self.s3.get_object_attributes(Bucket=self.p["bucket"], Key=self.key(name, DUMP_SUFFIX),
                                                  ObjectAttributes=["ObjectParts"])
            parts = (attrs.get("ObjectParts") or {}).get("TotalPartsCount")
        except (ClientError, BotoCoreError):
            parts = None
        size = head.get("ContentLength") or 0
        part_size = self.p["part_size"]
        if parts and parts > 1:
            part_size = -(-size // parts)
            # S3 parts are equal except the last; find the MiB-aligned size that gives this many parts
            for mib in range(5, 5121):
                candidate = mib * 1024 * 1024
                if -(-size // candidate) == parts:
                    part_size = candidate
                    break
        path = os.path.join(self.p["backup_dir"], name + DUMP_SUFFIX)
        digests = []
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(part_size), b""):
                digests.append(hashlib.sha256(chunk).digest())
        return digests

    # -- upload -------------------------------------------------------------------------------------------
    def extra_args(self, manifest):
        args = {"Metadata": {"sha256": manifest["sha256"], "backup-name": manifest["name"]}}
        if self.p["storage_class"]:
            args["StorageClass"] = self.p["storage_class"]
        if self.p["server_side_encryption"]:
            args["ServerSideEncryption"] = self.p["server_side_encryption"]
        return args

    def put_small(self, key, data, manifest):
        self.s3.put_object(Bucket=self.p["bucket"], Key=key, Body=data, ChecksumAlgorithm="SHA256",
                           ChecksumSHA256=b64(hashlib.sha256(data).digest()), **self.extra_args(manifest))

    def upload_dump(self, name, path, manifest):
        """Upload the dump; returns (parts, part_digests)."""
        key = self.key(name, DUMP_SUFFIX)
        size = manifest["size_bytes"]
        if size < self.p["multipart_threshold"]:
            with open(path, "rb") as handle:
                self.s3.put_object(Bucket=self.p["bucket"], Key=key, Body=handle, ContentLength=size,
                                   ChecksumAlgorithm="SHA256", ChecksumSHA256=b64(bytes.fromhex(manifest["sha256"])),
                                   **self.extra_args(manifest))
            return 1, None
        upload_id = self.s3.create_multipart_upload(Bucket=self.p["bucket"], Key=key, ChecksumAlgorithm="SHA256",
                                                    **self.extra_args(manifest))["UploadId"]
        parts, digests = [], []
        whole = hashlib.sha256()
        try:
            with open(path, "rb") as handle:
                number = 0
                for chunk in iter(lambda: handle.read(self.p["part_size"]), b""):
                    number += 1
                    digest = hashlib.sha256(chunk).digest()
                    whole.update(chunk)
                    digests.append(digest)
                    resp = self.s3.upload_part(Bucket=self.p["bucket"], Key=key, UploadId=upload_id, PartNumber=number,
                                               Body=chunk, ChecksumSHA256=b64(digest))
                    parts.append({"PartNumber": number, "ETag": resp["ETag"], "ChecksumSHA256": b64(digest)})
            if whole.hexdigest() != manifest["sha256"]:
                raise ValueError("the local dump changed while it was uploaded: sha256 %s..., manifest %s..."
                                 % (whole.hexdigest()[:12], manifest["sha256"][:12]))
            self.s3.complete_multipart_upload(Bucket=self.p["bucket"], Key=key, UploadId=upload_id,
                                              MultipartUpload={"Parts": parts})
        except BaseException:
            try:
                self.s3.abort_multipart_upload(Bucket=self.p["bucket"], Key=key, UploadId=upload_id)
            except Exception:  # noqa: S110 - the original error is what matters
                pass
            raise
        return len(parts), digests

    def delete_backup(self, name):
        keys = [self.key(name, s) for s in (MANIFEST_SUFFIX, SUM_SUFFIX, DUMP_SUFFIX)]
        # manifest first: a half-deleted backup is never taken as one
        self.s3.delete_object(Bucket=self.p["bucket"], Key=keys[0])
        self.s3.delete_objects(Bucket=self.p["bucket"], Delete={"Objects": [{"Key": k} for k in keys[1:]],
                                                                "Quiet": True})


def main():
    module = MarketplaceModule(argument_spec=build_argument_spec(), supports_check_mode=True)
    p = module.params
    if not HAS_BOTO3:
        module.fail_json(msg=missing_required_lib("boto3 (and botocore)"), exception=BOTO3_IMPORT_ERROR)
    if p["part_size"] < 5 * 1024 * 1024:
        module.fail_json(msg="part_size must be at least 5 MiB (5242880), S3's minimum part size")
    for opt in ("keep_last", "keep_daily", "keep_weekly", "orphan_min_age"):
        if p[opt] is not None and p[opt] < 0:
            module.fail_json(msg="%s must not be negative" % opt)
    do_retention = any(p[k] is not None for k in ("keep_last", "keep_daily", "keep_weekly"))
    if do_retention and sum(p[k] or 0 for k in ("keep_last", "keep_daily", "keep_weekly")) == 0:
        module.fail_json(msg="keep_last, keep_daily and keep_weekly are all 0: that would delete every remote backup")

    entries, _left = scan(p["backup_dir"], p["database"])
    by_name = {e["name"]: e for e in entries}
    wanted = []
    if p["upload"]:
        try:
            wanted = [normalize_name(n) for n in p["names"]] or ([entries[0]["name"]] if entries else [])
        except ValueError as exc:
            module.fail_json(msg=str(exc))
        if not wanted:
            module.fail_json(msg="no local backup to upload in %s" % p["backup_dir"])
        missing = [n for n in wanted if n not in by_name]
        if missing:
            module.fail_json(msg="no local backup named %s in %s" % (", ".join(missing), p["backup_dir"]))

    off = Offsite(module)
    result = dict(changed=False, uploaded=[], remote_backups=[], kept={}, deleted=[], orphans_removed=[],
                  location=off.location, checks=[])
    checks = result["checks"]
    try:
        off.s3.head_bucket(Bucket=p["bucket"])
    except (ClientError, BotoCoreError) as exc:
        module.fail_json(msg=off.error("cannot reach the bucket", exc), **result)

    try:
        for name in wanted:
            entry = by_name[name]
            manifest = read_manifest(entry["paths"]["manifest"])
            ok, reason, _facts = verify_file(entry, manifest)
            if not ok:
                module.fail_json(msg="local backup %s fails verification, not uploaded: %s" % (name, reason), **result)
            present, _how = off.remote_matches(name, manifest)
            item = dict(name=name, key=off.key(name, DUMP_SUFFIX), size_bytes=manifest["size_bytes"],
                        sha256=manifest["sha256"], uploaded=False, parts=None, verified_by=None)
            if not present:
                item["uploaded"] = True
                result["changed"] = True
                if not module.check_mode:
                    item["parts"], digests = off.upload_dump(name, entry["paths"]["dump"], manifest)
                    with open(entry["paths"]["sha256"], "rb") as handle:
                        off.put_small(off.key(name, SUM_SUFFIX), handle.read(), manifest)
                    with open(entry["paths"]["manifest"], "rb") as handle:
                        off.put_small(off.key(name, MANIFEST_SUFFIX), handle.read(), manifest)
                    ok, how = off.remote_matches(name, manifest, part_digests=digests)
                    if not ok:
                        module.fail_json(msg="remote copy of %s does not verify after the upload: %s" % (name, how),
                                         **result)
                    item["verified_by"] = how
            else:
                # make sure the manifest is there too (an earlier run may have stopped before it)
                try:
                    off.s3.head_object(Bucket=p["bucket"], Key=off.key(name, MANIFEST_SUFFIX))
                except ClientError:
                    result["changed"] = True
                    if not module.check_mode:
                        with open(entry["paths"]["sha256"], "rb") as handle:
                            off.put_small(off.key(name, SUM_SUFFIX), handle.read(), manifest)
                        with open(entry["paths"]["manifest"], "rb") as handle:
                            off.put_small(off.key(name, MANIFEST_SUFFIX), handle.read(), manifest)
                item["verified_by"] = _how
            result["uploaded"].append(item)
            verb = ("would upload" if module.check_mode else "uploaded") if item["uploaded"] else "already offsite"
            checks.append(_check("offsite_upload", "ok", manifest["size_bytes"], None,
                                 "%s %s to %s (%s bytes%s)" % (verb, name, off.location, manifest["size_bytes"],
                                                               ", %d parts" % item["parts"] if item["parts"] else "")))
            if item["verified_by"]:
                checks.append(_check("offsite_verify", "ok", manifest["sha256"], manifest["sha256"],
                                     "remote copy of %s matches the manifest (sha256 %s..., verified by %s)"
                                     % (name, manifest["sha256"][:12], item["verified_by"])))

        backups, orphans, _objects = off.list_remote()
        if do_retention:
            keep, drop = retention(list(backups.values()), p["keep_last"] or 0, p["keep_daily"] or 0,
                                   p["keep_weekly"] or 0)
            for name in wanted:
                if name in drop:
                    drop.remove(name)
                    keep.setdefault(name, []).append("protected")
            for name in drop:
                if not module.check_mode:
                    off.delete_backup(name)
                backups.pop(name, None)
            now = datetime.datetime.now(datetime.UTC)
            old_orphans = [o["Key"] for o in orphans
                           if (now - o["LastModified"]).total_seconds() >= p["orphan_min_age"]]
            if old_orphans and not module.check_mode:
                off.s3.delete_objects(Bucket=p["bucket"], Delete={"Objects": [{"Key": k} for k in old_orphans],
                                                                  "Quiet": True})
            result.update(kept=keep, deleted=drop, orphans_removed=old_orphans)
            result["changed"] = result["changed"] or bool(drop or old_orphans)
            checks.append(_check("offsite_retention", "ok", len(backups), None,
                                 "%s: kept %d (last %s, %s daily, %s weekly), %s %d%s" % (
                                     off.location, len(keep), p["keep_last"] or 0, p["keep_daily"] or 0,
                                     p["keep_weekly"] or 0, "would delete" if module.check_mode else "deleted",
                                     len(drop), (": " + ", ".join(drop)) if drop else "")))
        result["remote_backups"] = sorted(backups, key=lambda n: (backups[n]["time"], backups[n]["seq"]), reverse=True)
    except (ClientError, BotoCoreError) as exc:
        module.fail_json(msg=off.error("S3 request failed", exc), **json_safe(result))
    except (OSError, ValueError) as exc:
        module.fail_json(msg="offsite copy failed: %s" % exc, **json_safe(result))
    module.exit_json(**json_safe(result))


if __name__ == "__main__":
    main()
