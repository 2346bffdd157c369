"""The evidence bundle: one ZIP an inspector can check file by file without trusting Kuzet.

Layout of the ZIP:
    manifest.json            every other file's path, size and SHA-256 (the public key's too), the period
    manifest.sig             the Ed25519 signature of manifest.json's exact bytes (JSON, see below)
    organization-key.pub     the signer's public key (PEM); pin it with `verify --key` to prove origin
    report.pdf, results.json, extracts/*.csv, documents/*, audit-anchor.json

`manifest.sig` holds the signature, the manifest's SHA-256 and a checksum over both. The signature
alone proves that the manifest is intact; the two hashes let `verify` say *which* file changed: a
changed manifest no longer matches its recorded hash, a changed signature file no longer matches
its own checksum. Every other file is named by the manifest's hash that it no longer matches.

`build` and `verify` do no database work: the caller gathers the members (compliance.export).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from compliance import orgkey

FORMAT = "kuzet-evidence/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
PUBLIC_KEY = "organization-key.pub"
RESERVED = frozenset({MANIFEST, SIGNATURE, PUBLIC_KEY})

Progress = Callable[[str], None]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _sig_check(manifest_sha256: str, signature: str, public_key: str) -> str:
    return _sha256(f"{manifest_sha256}\n{signature}\n{public_key}".encode())


def _safe_name(name: str) -> bool:
    parts = name.split("/")
    return bool(name) and not name.startswith("/") and ".." not in parts and "" not in parts and "\\" not in name


def build(out: Path, members: Iterable[tuple[str, bytes]], key: Ed25519PrivateKey, *, created_at: datetime,
          meta: dict[str, Any], progress: Progress | None = None) -> dict[str, Any]:
    """Write the signed bundle to `out`; returns the manifest. Entries carry `created_at` as their
    time, so the same inputs give the same bytes."""
    say = progress or (lambda _msg: None)
    files: list[dict[str, Any]] = []
    stamp = created_at.timetuple()[:6]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        def put(name: str, data: bytes) -> None:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)

        seen: set[str] = set()
        for name, data in members:
            if not _safe_name(name) or name in RESERVED or name in seen:
                raise ValueError(f"bad or duplicate member name in bundle: {name!r}")
            seen.add(name)
            put(name, data)
            files.append({"path": name, "size": len(data), "sha256": _sha256(data)})
            say(f"added {name} ({len(data):,} bytes)")
        pub_pem = orgkey.public_pem(key)
        put(PUBLIC_KEY, pub_pem)
        files.append({"path": PUBLIC_KEY, "size": len(pub_pem), "sha256": _sha256(pub_pem)})
        manifest = {"format": FORMAT, "created_at": created_at.isoformat(), "meta": meta,
                    "signer": orgkey.fingerprint(key), "files": files}
        manifest_bytes = json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=True).encode()
        put(MANIFEST, manifest_bytes)
        signature = base64.b64encode(key.sign(manifest_bytes)).decode()
        m_sha = _sha256(manifest_bytes)
        fp = orgkey.fingerprint(key)
        sig_doc = {"algorithm": "Ed25519", "signed_file": MANIFEST, "manifest_sha256": m_sha,
                   "signature": signature, "public_key": fp, "check": _sig_check(m_sha, signature, fp)}
        put(SIGNATURE, json.dumps(sig_doc, indent=1, sort_keys=True).encode())
        say("signed the manifest")
    tmp = out.with_name(out.name + ".part")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(out)  # never a half-written bundle under the final name
    return manifest


@dataclass(slots=True)
class Problem:
    file: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.message}"


@dataclass(slots=True)
class Verification:
    ok: bool
    files_checked: int = 0
    signer: str = ""
    origin_checked: bool = False  # True when checked against a key the verifier supplied
    problems: list[Problem] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)


def _read_all(zf: zipfile.ZipFile, problems: list[Problem]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for info in zf.infolist():
        if info.is_dir():
            continue
        try:
            out[info.filename] = zf.read(info)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:  # CRC or compressed-data damage
            problems.append(Problem(info.filename, f"damaged inside the ZIP ({exc})"))
    return out


def _fingerprint_of(pem: bytes) -> str | None:
    """The fingerprint of a PEM public key, or None when it is not one (damaged, another kind)."""
    try:
        return orgkey.fingerprint(orgkey.load_public(pem))
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return None


def verify(path: Path, trusted_key: Ed25519PublicKey | None = None) -> Verification:
    """Check every file against the manifest and the manifest against its signature; every problem
    names the file it is about."""
    problems: list[Problem] = []
    try:
        with zipfile.ZipFile(path) as zf:
            data = _read_all(zf, problems)
    except (zipfile.BadZipFile, OSError) as exc:
        return Verification(False, problems=[Problem(path.name, f"not a readable ZIP ({exc})")])

    result = Verification(False, origin_checked=trusted_key is not None, problems=problems)
    manifest_bytes = data.get(MANIFEST)
    sig_bytes = data.get(SIGNATURE)
    if manifest_bytes is None:
        problems.append(Problem(MANIFEST, "missing"))
        return result
    if sig_bytes is None:
        problems.append(Problem(SIGNATURE, "missing"))
        return result

    sig_doc: dict[str, Any] = {}
    try:
        sig_doc = json.loads(sig_bytes)
        intact = sig_doc["check"] == _sig_check(sig_doc["manifest_sha256"], sig_doc["signature"],
                                                sig_doc["public_key"])
    except (ValueError, KeyError, TypeError):
        intact = False
    if not intact:
        problems.append(Problem(SIGNATURE, "changed or damaged (its checksum does not match)"))
        return result
    if _sha256(manifest_bytes) != sig_doc["manifest_sha256"]:
        problems.append(Problem(MANIFEST, "changed after signing (its SHA-256 is not the signed one)"))
        return result

    try:
        signer = orgkey.load_public(sig_doc["public_key"].encode())
        signature = base64.b64decode(sig_doc["signature"], validate=True)
    except ValueError:
        problems.append(Problem(SIGNATURE, "the public key or signature is malformed"))
        return result
    result.signer = sig_doc["public_key"]
    key = trusted_key or signer
    if trusted_key is not None and orgkey.fingerprint(trusted_key) != result.signer:
        problems.append(Problem(SIGNATURE, f"signed by another key ({result.signer}), not the one given"))
        return result
    try:
        key.verify(signature, manifest_bytes)
    except InvalidSignature:
        problems.append(Problem(SIGNATURE, "the signature does not verify against manifest.json"))
        return result
    manifest = json.loads(manifest_bytes)
    result.manifest = manifest
    listed: set[str] = set()
    for f in manifest.get("files", []):
        name = f["path"]
        listed.add(name)
        got = data.get(name)
        if got is None:
            if not any(p.file == name for p in problems):
                problems.append(Problem(name, "missing from the bundle"))
            continue
        result.files_checked += 1
        if len(got) != f["size"] or _sha256(got) != f["sha256"]:
            problems.append(Problem(name, f"changed: SHA-256 {_sha256(got)}, manifest says {f['sha256']}"))
    if PUBLIC_KEY in data and not any(p.file == PUBLIC_KEY for p in problems) \
            and _fingerprint_of(data[PUBLIC_KEY]) != result.signer:
        problems.append(Problem(PUBLIC_KEY, "is not the key that signed the manifest"))
    for name in sorted(set(data) - listed - RESERVED):
        problems.append(Problem(name, "not listed in the manifest (added after signing)"))
    result.ok = not problems
    return result
