"""Evidence packages: a zip that a court, an authority or an auditor can check offline.

Layout (in this order, so two builds of the same inputs give the same bytes)::

    content/<name>   the preserved content, decrypted (sorted by name)
    audit.jsonl      a contiguous excerpt of the audit log, one entry a line, with hashes
    metadata.json    the facts the caller passes (order, case, decision, timestamps)
    manifest.json    package id, creation time, creator, every file's SHA-256, size and
                     timestamps, and the audit excerpt's first/last seq and head hash
    SHA256SUMS       coreutils format: ``sha256sum -c SHA256SUMS`` checks every other file

``verify_package`` checks all of it without extracting anything: every file against both
lists, nothing missing or extra, the manifest's own consistency, and the audit chain (each
entry's hash recomputed with ``cleanit.domain.audit.entry_hash``, the excerpt contiguous and
linked to the predecessor hash the manifest states).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import uuid
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

from cleanit.domain.audit import GENESIS, AuditRecord, verify_chain
from cleanit.domain.errors import Conflict, InvalidInput, NotFound

FORMAT = "cleanit-evidence/1"
CONTENT_DIR = "content/"
AUDIT = "audit.jsonl"
METADATA = "metadata.json"
MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"
# One path component, no leading dot or dash: nothing an unzip tool or sha256sum reads
# as a directory, an option or an escape.
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_SUM_LINE = re.compile(r"([0-9a-f]{64}) [ *](.+)")
_READ = 1 << 20
_MAX_LIST_BYTES = 64 << 20  # manifest.json and SHA256SUMS are small; refuse to load huge ones
_RECORD_FIELDS = frozenset(
    (
        "seq",
        "at",
        "actor",
        "organisation_id",
        "action",
        "entity",
        "entity_id",
        "data",
        "prev_hash",
        "hash",
    )
)


@dataclass(frozen=True, slots=True)
class ContentFile:
    """One preserved item; ``chunks`` is read once, e.g. ``vault.read(ref, aad=...)``."""

    name: str
    chunks: Iterable[bytes]
    preserved_at: datetime
    media_type: str | None = None


@dataclass(frozen=True, slots=True)
class PackageInfo:
    path: Path
    package_id: str
    # Record this (e.g. in the audit log) at hand-over: it fixes every file's hash.
    manifest_sha256: str
    files: int


@dataclass(frozen=True, slots=True)
class PackageProblem:
    path: str  # the file in the package the problem is about
    kind: str  # see docs/evidence.md for the list
    detail: str
    seq: int | None = None  # the audit entry, for audit problems

    def __str__(self) -> str:
        return f"{self.path}: {self.detail}"


@dataclass(frozen=True, slots=True)
class VerificationReport:
    path: Path
    package_id: str | None
    manifest_sha256: str | None
    files_checked: int
    audit_entries: int
    audit_head: tuple[int, str] | None
    problems: tuple[PackageProblem, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems


# --- the audit excerpt ------------------------------------------------------------------


def record_to_json(rec: AuditRecord) -> dict[str, Any]:
    return {
        "seq": rec.seq,
        "at": rec.at,
        "actor": rec.actor,
        "organisation_id": rec.organisation_id,
        "action": rec.action,
        "entity": rec.entity,
        "entity_id": rec.entity_id,
        "data": rec.data,
        "prev_hash": rec.prev_hash,
        "hash": rec.hash,
    }


def _audit_line(rec: AuditRecord) -> bytes:
    # default=str as in entry_hash, so what is written re-hashes to the same value.
    text = json.dumps(
        record_to_json(rec), sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return text.encode("utf-8") + b"\n"


def record_from_json(obj: object) -> AuditRecord:
    """Parse one ``audit.jsonl`` entry; ``ValueError`` says what is wrong with it."""
    if not isinstance(obj, dict):
        raise ValueError("an entry must be a JSON object")
    if set(obj) != _RECORD_FIELDS:
        missing, extra = sorted(_RECORD_FIELDS - set(obj)), sorted(set(obj) - _RECORD_FIELDS)
        raise ValueError(f"fields missing {missing}, unexpected {extra}")
    org = obj["organisation_id"]
    types_ok = (
        type(obj["seq"]) is int
        and (org is None or type(org) is int)
        and isinstance(obj["data"], dict)
        and all(
            isinstance(obj[k], str)
            for k in ("at", "actor", "action", "entity", "entity_id", "prev_hash", "hash")
        )
    )
    if not types_ok:
        raise ValueError("a field has the wrong type")
    return AuditRecord(
        seq=obj["seq"],
        at=obj["at"],
        actor=obj["actor"],
        organisation_id=org,
        action=obj["action"],
        entity=obj["entity"],
        entity_id=obj["entity_id"],
        data=obj["data"],
        prev_hash=obj["prev_hash"],
        hash=obj["hash"],
    )


def check_excerpt(records: Sequence[AuditRecord], first_prev: str) -> list[PackageProblem]:
    """``domain.audit.verify_chain`` on an excerpt that starts anywhere: ``first_prev`` is
    the hash the excerpt claims precedes its first entry."""
    if not records:
        return []
    report = verify_chain(records, start=(records[0].seq, first_prev))
    return [
        PackageProblem(AUDIT, f"audit-{p.kind}", f"audit {p.detail}", p.seq)
        for p in report.problems
    ]


# --- building ---------------------------------------------------------------------------


def _json_default(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID | Decimal | Path):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"a value of type {type(value).__name__} cannot be written as JSON")


def _pretty_json(obj: object, what: str) -> bytes:
    try:
        text = json.dumps(
            obj,
            sort_keys=True,
            indent=2,
            ensure_ascii=False,
            allow_nan=False,
            default=_json_default,
        )
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"the {what} cannot be written as JSON: {exc}", field=what) from None
    return text.encode("utf-8") + b"\n"


def _zip_info(name: str, at: datetime) -> zipfile.ZipInfo:
    stamp = max(at.astimezone(UTC), datetime(1980, 1, 1, tzinfo=UTC))  # zip's epoch
    info = zipfile.ZipInfo(name, date_time=stamp.timetuple()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3  # Unix, whatever builds it: same bytes everywhere
    info.external_attr = 0o644 << 16
    return info


def _check_inputs(
    contents: Sequence[ContentFile], audit: Sequence[AuditRecord], created_at: datetime
) -> None:
    if created_at.tzinfo is None:
        raise InvalidInput("created_at must carry a time zone", field="created_at")
    seen: set[str] = set()
    for item in contents:
        if not _SAFE_NAME.fullmatch(item.name):
            raise InvalidInput(
                f"content name {item.name!r} is not allowed: use 1–200 letters, digits, "
                "'.', '_' or '-', starting with a letter or digit (no paths)",
                field="contents",
            )
        if item.name in seen:
            raise InvalidInput(f"content name {item.name!r} is used twice", field="contents")
        if item.preserved_at.tzinfo is None:
            raise InvalidInput(
                f"preserved_at of {item.name!r} must carry a time zone", field="contents"
            )
        seen.add(item.name)
    for before, after in itertools.pairwise(audit):
        if after.seq != before.seq + 1:
            raise InvalidInput(
                f"the audit excerpt must be contiguous: entry {after.seq} follows {before.seq}",
                field="audit",
            )
    problems = check_excerpt(audit, audit[0].prev_hash) if audit else []
    if problems:
        raise Conflict(
            f"the audit log does not verify ({problems[0].detail}); "
            "run `cleanit audit verify` before exporting evidence"
        )


def _write_content(zf: zipfile.ZipFile, item: ContentFile, at: datetime) -> dict[str, Any]:
    name = CONTENT_DIR + item.name
    digest, size = hashlib.sha256(), 0
    # force_zip64: the size is not known before the content has streamed through.
    with zf.open(_zip_info(name, at), "w", force_zip64=True) as w:
        for chunk in item.chunks:
            w.write(chunk)
            digest.update(chunk)
            size += len(chunk)
    entry = {
        "path": name,
        "sha256": digest.hexdigest(),
        "size": size,
        "written_at": at.isoformat(),
        "preserved_at": item.preserved_at.isoformat(),
    }
    if item.media_type:
        entry["media_type"] = item.media_type
    return entry


def _audit_summary(audit: Sequence[AuditRecord]) -> dict[str, Any]:
    return {
        "entries": len(audit),
        "first_seq": audit[0].seq if audit else None,
        "last_seq": audit[-1].seq if audit else None,
        "first_prev_hash": audit[0].prev_hash if audit else None,
        "head_hash": audit[-1].hash if audit else None,
        "hash": "sha256 of the canonical JSON of each entry, see cleanit.domain.audit.entry_hash",
    }


def build_package(
    path: Path,
    *,
    contents: Sequence[ContentFile],
    metadata: Mapping[str, Any],
    audit: Sequence[AuditRecord],
    creator: str,
    created_at: datetime,
    package_id: str | None = None,
) -> PackageInfo:
    """Write the package to ``path`` (via a temporary file, renamed when complete).

    Content is streamed into the zip: only one chunk of it is in memory at a time.
    """
    _check_inputs(contents, audit, created_at)
    pid = package_id or str(uuid.uuid4())
    created = created_at.isoformat()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    entries: list[dict[str, Any]] = []
    try:
        with tmp.open("xb") as out:
            with zipfile.ZipFile(out, "w") as zf:
                for item in sorted(contents, key=lambda c: c.name):
                    entries.append(_write_content(zf, item, created_at))
                small = (
                    (AUDIT, b"".join(_audit_line(r) for r in audit)),
                    (METADATA, _pretty_json(dict(metadata), "metadata")),
                )
                for name, data in small:
                    zf.writestr(_zip_info(name, created_at), data)
                    entries.append(
                        {
                            "path": name,
                            "sha256": hashlib.sha256(data).hexdigest(),
                            "size": len(data),
                            "written_at": created,
                        }
                    )
                manifest = _pretty_json(
                    {
                        "format": FORMAT,
                        "package_id": pid,
                        "created_at": created,
                        "creator": creator,
                        "files": entries,
                        "audit": _audit_summary(audit),
                    },
                    "manifest",
                )
                zf.writestr(_zip_info(MANIFEST, created_at), manifest)
                manifest_sha = hashlib.sha256(manifest).hexdigest()
                sums = [f"{e['sha256']}  {e['path']}\n" for e in entries]
                sums.append(f"{manifest_sha}  {MANIFEST}\n")
                zf.writestr(_zip_info(SUMS, created_at), "".join(sums).encode("utf-8"))
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(path)  # atomic: nobody hands over half a package
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return PackageInfo(path, pid, manifest_sha, len(entries) + 2)


# --- verifying --------------------------------------------------------------------------


def _unsafe(name: str) -> bool:
    parts = name.split("/")
    return (
        name.startswith("/")
        or "\\" in name
        or ":" in name
        or any(ord(ch) < 32 for ch in name)
        or any(p in ("", ".", "..") for p in parts)
    )


def _hash_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with zf.open(info) as r:
        while chunk := r.read(_READ):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _read_small(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    if info.file_size > _MAX_LIST_BYTES:
        raise ValueError(f"it is {info.file_size} bytes, more than a package ever needs")
    return zf.read(info)


def _parse_sums(data: bytes, problems: list[PackageProblem]) -> dict[str, str]:
    sums: dict[str, str] = {}
    for n, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
        m = _SUM_LINE.fullmatch(line)
        if m is None:
            problems.append(
                PackageProblem(SUMS, "unparsable", f"line {n} is not `<sha256>  <file>`")
            )
        elif m.group(2) in sums:
            problems.append(PackageProblem(SUMS, "duplicate", f"{m.group(2)} is listed twice"))
        else:
            sums[m.group(2)] = m.group(1)
    return sums


def _manifest_files(
    manifest: Mapping[str, Any], problems: list[PackageProblem]
) -> dict[str, dict[str, Any]]:
    files: dict[str, dict[str, Any]] = {}

    def bad(detail: str) -> None:
        problems.append(PackageProblem(MANIFEST, "manifest", detail))

    if manifest.get("format") != FORMAT:
        bad(f"format is {manifest.get('format')!r}, expected {FORMAT!r}")
    for key in ("package_id", "creator", "created_at"):
        if not isinstance(manifest.get(key), str) or not manifest[key]:
            bad(f"{key} is missing")
    created = manifest.get("created_at")
    if isinstance(created, str) and created:
        try:
            if datetime.fromisoformat(created).tzinfo is None:
                bad("created_at has no time zone")
        except ValueError:
            bad(f"created_at {created!r:.40} is not an ISO 8601 time")
    listed = manifest.get("files")
    for entry in listed if isinstance(listed, list) else []:
        ok = (
            isinstance(entry, dict)
            and isinstance(entry.get("path"), str)
            and isinstance(entry.get("sha256"), str)
            and _SHA256.fullmatch(entry["sha256"]) is not None
            and type(entry.get("size")) is int
            and entry["size"] >= 0
        )
        if not ok:
            bad(f"a file entry is malformed: {entry!r:.120}")
        elif entry["path"] in files:
            bad(f"{entry['path']} is listed twice")
        elif entry["path"] in (MANIFEST, SUMS):
            bad(f"{entry['path']} cannot list itself")
        else:
            files[entry["path"]] = entry
    if not isinstance(listed, list):
        bad("files is missing")
    for required in (AUDIT, METADATA):
        if isinstance(listed, list) and required not in files:
            bad(f"{required} is not listed")
    return files


def _read_audit(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, problems: list[PackageProblem]
) -> list[AuditRecord]:
    records: list[AuditRecord] = []
    with zf.open(info) as raw:
        for n, line in enumerate(raw, 1):
            try:
                records.append(record_from_json(json.loads(line)))
            except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError included
                problems.append(
                    PackageProblem(AUDIT, "audit-unparsable", f"line {n} is not an entry: {exc}")
                )
    return records


def _check_audit_summary(
    stated: object, records: Sequence[AuditRecord], problems: list[PackageProblem]
) -> str:
    """Compare the manifest's audit section with the excerpt; returns the stated first prev."""
    first_prev = records[0].prev_hash if records else GENESIS
    if not isinstance(stated, dict):
        problems.append(PackageProblem(MANIFEST, "manifest", "the audit section is missing"))
        return first_prev
    actual = {
        "entries": len(records),
        "first_seq": records[0].seq if records else None,
        "last_seq": records[-1].seq if records else None,
        "head_hash": records[-1].hash if records else None,
    }
    for key, value in actual.items():
        if stated.get(key) != value:
            problems.append(
                PackageProblem(
                    MANIFEST,
                    "audit-manifest",
                    f"audit {key} is {stated.get(key)!r} but {AUDIT} has {value!r}",
                )
            )
    prev = stated.get("first_prev_hash")
    if records and not (isinstance(prev, str) and _SHA256.fullmatch(prev)):
        problems.append(
            PackageProblem(MANIFEST, "audit-manifest", "audit first_prev_hash is not stated")
        )
        return first_prev
    return prev if isinstance(prev, str) else first_prev


def _members(
    zf: zipfile.ZipFile, problems: list[PackageProblem]
) -> Iterator[tuple[str, zipfile.ZipInfo]]:
    seen: set[str] = set()
    for info in zf.infolist():
        name = info.filename
        if info.is_dir() and not _unsafe(name.rstrip("/")):
            continue  # repacking tools add directory entries; they hold no data
        if _unsafe(name):
            problems.append(
                PackageProblem(name, "unsafe-name", "a path that could escape the folder")
            )
        elif name in seen:
            problems.append(PackageProblem(name, "duplicate", "the archive holds it twice"))
        else:
            seen.add(name)
            yield name, info


def verify_package(path: Path) -> VerificationReport:
    """Check a package offline; every problem is named with the file (and audit entry)."""
    if not path.is_file():
        raise NotFound(f"no evidence package at {path}")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        problem = PackageProblem(path.name, "unreadable", f"not a readable zip archive ({exc})")
        return VerificationReport(path, None, None, 0, 0, None, (problem,))
    with zf:
        return _verify(path, zf)


def _verify(path: Path, zf: zipfile.ZipFile) -> VerificationReport:
    problems: list[PackageProblem] = []
    members = dict(_members(zf, problems))
    actual: dict[str, tuple[str, int]] = {}
    for name, info in members.items():
        try:
            actual[name] = _hash_member(zf, info)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
            problems.append(
                PackageProblem(name, "unreadable", f"cannot be read, altered or damaged ({exc})")
            )

    def load(name: str) -> bytes | None:
        if name not in members:
            problems.append(PackageProblem(name, "missing", "not in the package"))
            return None
        if name not in actual:
            return None  # already reported unreadable
        try:
            return _read_small(zf, members[name])
        except ValueError as exc:
            problems.append(PackageProblem(name, "unparsable", str(exc)))
            return None

    raw_sums = load(SUMS)
    sums = _parse_sums(raw_sums, problems) if raw_sums is not None else {}
    raw_manifest = load(MANIFEST)
    manifest: dict[str, Any] = {}
    if raw_manifest is not None:
        try:
            parsed = json.loads(raw_manifest)
            manifest = parsed if isinstance(parsed, dict) else {}
            if not manifest:
                raise ValueError("not a JSON object")
        except ValueError as exc:
            problems.append(PackageProblem(MANIFEST, "unparsable", f"not valid JSON: {exc}"))
    files = _manifest_files(manifest, problems) if manifest else {}

    # manifest.json is listed in SHA256SUMS only: it cannot hold its own hash.
    listed = set(sums) | set(files) | {MANIFEST}
    for name in sorted(set(members) - listed - {SUMS}):
        problems.append(
            PackageProblem(name, "unexpected", "in the package but not in SHA256SUMS or manifest")
        )
    for name in sorted(listed - set(members) - {MANIFEST}):
        problems.append(
            PackageProblem(name, "missing", "listed in SHA256SUMS or manifest but not present")
        )
    checked = 0
    for name in sorted(listed & set(actual)):
        sha, size = actual[name]
        wrong = []
        if name in sums and sums[name] != sha:
            wrong.append(f"SHA256SUMS says {sums[name][:16]}…")
        if name not in sums and raw_sums is not None:
            wrong.append("SHA256SUMS does not list it")
        entry = files.get(name)
        if entry is not None and (entry["sha256"], entry["size"]) != (sha, size):
            wrong.append(f"manifest says {entry['sha256'][:16]}… ({entry['size']} bytes)")
        if entry is None and name != MANIFEST and manifest:
            wrong.append("manifest does not list it")
        if wrong:
            problems.append(
                PackageProblem(
                    name, "changed", f"SHA-256 is {sha[:16]}… ({size} bytes); " + "; ".join(wrong)
                )
            )
        else:
            checked += 1

    records: list[AuditRecord] = []
    if AUDIT in actual:  # a missing or unreadable excerpt is reported above, once
        records = _read_audit(zf, members[AUDIT], problems)
        first_prev = records[0].prev_hash if records else GENESIS
        if manifest:
            first_prev = _check_audit_summary(manifest.get("audit"), records, problems)
        problems.extend(check_excerpt(records, first_prev))
    head = (records[-1].seq, records[-1].hash) if records else None
    package_id = manifest.get("package_id")
    return VerificationReport(
        path=path,
        package_id=package_id if isinstance(package_id, str) else None,
        manifest_sha256=hashlib.sha256(raw_manifest).hexdigest() if raw_manifest else None,
        files_checked=checked,
        audit_entries=len(records),
        audit_head=head,
        problems=tuple(problems),
    )
