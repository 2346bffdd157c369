"""`kuzet compliance ...`: export the signed evidence bundle, verify one, hand out the public key."""

from __future__ import annotations

import argparse
import sys
from datetime import date, timedelta
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="compliance", required=True)
    e = sub.add_parser("export", help="the signed evidence bundle (ZIP) for a period")
    e.add_argument("--from", dest="date_from", type=date.fromisoformat, help="first day (default: 30 days ago)")
    e.add_argument("--to", dest="date_to", type=date.fromisoformat, help="last day (default: today)")
    e.add_argument("--lang", choices=["kk", "ru", "en"], default="kk", help="language of the report (default kk)")
    e.add_argument("--out", required=True, help="the ZIP file to write")
    e.add_argument("--config")
    e.add_argument("--home")
    v = sub.add_parser("verify", help="check every file of a bundle and its signature")
    v.add_argument("bundle")
    v.add_argument("--key", help="the organization's public key (PEM, or the base64 form `key` prints);"
                                 " without it the bundle is checked against the key it carries")
    k = sub.add_parser("key", help="print the organization's public key (made on first use)")
    k.add_argument("--out", help="write the PEM here instead of printing it")
    k.add_argument("--config")
    k.add_argument("--home")


def period(args: argparse.Namespace, today: date) -> tuple[date, date]:
    to = args.date_to or today
    start = args.date_from or to - timedelta(days=29)
    if start > to:
        raise SystemExit(f"kuzet compliance export: --from {start} is after --to {to}")
    return start, to


def verify(args: argparse.Namespace) -> int:
    from compliance import bundle, orgkey

    trusted = None
    if args.key:
        try:
            trusted = orgkey.load_public(Path(args.key).read_bytes())
        except (OSError, ValueError) as exc:
            print(f"kuzet compliance verify: cannot read the key {args.key}: {exc}", file=sys.stderr)
            return 2
    path = Path(args.bundle)
    result = bundle.verify(path, trusted)
    if result.ok:
        origin = ("signed by the key given" if result.origin_checked
                  else "signed by the key it carries (pass --key to check who signed it)")
        print(f"OK: {path.name}: {result.files_checked} files match the manifest; {origin}: {result.signer}")
        return 0
    for problem in result.problems:
        print(f"FAILED: {problem}")
    return 1


def key(args: argparse.Namespace, home: Path) -> int:
    from compliance import orgkey

    k = orgkey.load_or_create(home)
    pem = orgkey.public_pem(k)
    if args.out:
        Path(args.out).write_bytes(pem)
        print(f"public key written to {args.out} (fingerprint {orgkey.fingerprint(k)})")
    else:
        sys.stdout.write(pem.decode())
        print(f"fingerprint: {orgkey.fingerprint(k)}")
    return 0
