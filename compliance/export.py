"""Gather the evidence for a period and write the signed bundle (compliance.bundle).

The bundle holds: the report (PDF), the same results as JSON, the CSV extracts (signals per panel
per day, duty coverage per group per day, response times, the audit-chain verification), every
registered document's file, and the audit anchor taken at export time (also appended to
`$KUZET_HOME/audit-anchors.jsonl`, so deleting later entries or rewriting the chain shows).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg

from compliance import bundle, check, document, extracts, orgkey, report
from compliance.result import worst
from compliance.settings import ComplianceSettings
from console import audit

Progress = Callable[[str], None]

# Headers of each extract, so an empty period still gives a CSV an inspector can open.
EXTRACT_HEADERS: dict[str, list[str]] = {
    "signals_per_panel_per_day": ["day", "account", "object", "signals"],
    "duty_coverage_per_group_per_day": ["day", "group", "minutes_on_duty", "minutes_in_day", "two_groups_pct"],
    "response_times": ["alarm_id", "object", "priority", "opened_at", "acknowledged_at", "dispatched_at",
                       "arrived_at", "closed_at", "ack_seconds", "arrival_seconds", "outcome"],
    "audit_chain": ["verified_at", "entries", "intact", "first_bad_id", "reason", "last_id", "last_at", "last_hash"],
}


def to_csv(rows: list[dict[str, Any]], header: list[str]) -> bytes:
    out = io.StringIO()
    fields = list(rows[0].keys()) if rows else header
    w = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    return out.getvalue().encode("utf-8")


def _charts(sig_rows: list[dict[str, Any]], duty_rows: list[dict[str, Any]],
            resp_rows: list[dict[str, Any]]) -> tuple[list[tuple[dt.date, int]], list[tuple[str, float]], list[float]]:
    per_day: dict[dt.date, int] = defaultdict(int)
    for r in sig_rows:
        per_day[dt.date.fromisoformat(r["day"])] += int(r["signals"])
    on: dict[str, float] = defaultdict(float)
    total: dict[str, float] = defaultdict(float)
    for r in duty_rows:
        on[r["group"]] += float(r["minutes_on_duty"])
        total[r["group"]] += float(r["minutes_in_day"])
    coverage = [(g, round(100.0 * on[g] / total[g], 1) if total[g] else 0.0) for g in sorted(total)]
    minutes = [float(r["arrival_seconds"]) / 60 for r in resp_rows if r.get("arrival_seconds") not in (None, "")]
    return sorted(per_day.items()), coverage, minutes


async def export_bundle(conn: asyncpg.Connection, out: Path, *, home: Path, period_from: dt.date,
                        period_to: dt.date, lang: str = "kk", settings: Any = None, actor: str = "system:cli",
                        progress: Progress | None = None, now: dt.datetime | None = None) -> dict[str, Any]:
    """Write the bundle to `out` and return its manifest."""
    say = progress or (lambda _msg: None)
    if lang not in report.LANGS:
        raise ValueError(f"lang must be one of {', '.join(report.LANGS)}")
    now = now or dt.datetime.now(dt.UTC)
    cs = ComplianceSettings.load(settings)
    say("running the checks")
    results = [r.to_dict() for r in await check.run_all(conn, period_from=period_from, period_to=period_to,
                                                          settings=settings)]
    kw: dict[str, Any] = {"period_from": period_from, "period_to": period_to, "settings": settings}
    say("extracting signals, duty coverage and response times")
    rows = {
        "signals_per_panel_per_day": await extracts.signals_per_panel_per_day(conn, **kw),
        "duty_coverage_per_group_per_day": await extracts.duty_coverage_per_group_per_day(conn, **kw),
        "response_times": await extracts.response_times(conn, **kw),
    }
    say("verifying the audit chain")
    rows["audit_chain"] = await extracts.audit_chain(conn)
    chain = rows["audit_chain"][0] if rows["audit_chain"] else {}
    anchor = await audit.anchor(conn)
    audit.write_anchor(home, anchor, f"evidence export {period_from}..{period_to}")

    members: list[tuple[str, bytes]] = []
    docs = await document.list_documents(conn)
    doc_lines = []
    for d in docs:
        path = document.file_path(home, d)
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise RuntimeError(f"document {d['id']} ({d['kind']}): its file {path} cannot be read: {exc}") from None
        members.append((f"documents/{d['id']}-{document.file_name(d)}", content))
        doc_lines.append(d)
        say(f"document {d['id']} {d['kind']} № {d.get('number', '')}")

    per_day, coverage, minutes = _charts(rows["signals_per_panel_per_day"], rows["duty_coverage_per_group_per_day"],
                                         rows["response_times"])
    data = report.ReportData(
        organization=cs.organization or "—", period_from=period_from, period_to=period_to, generated_at=now,
        results=results, signals_per_day=per_day, coverage=coverage, response_minutes=minutes,
        documents=[{"kind_label": d.get("label") or d["kind"],
                    "number": d.get("number", ""), "valid_until": d.get("valid_until")} for d in doc_lines],
        audit={"ok": chain.get("intact", False), "entries": chain.get("entries", 0),
               "last_hash": chain.get("last_hash", ""), "first_bad_id": chain.get("first_bad_id", ""),
               "reason": chain.get("reason", "")})
    say(f"writing the report ({lang})")
    pdf = report.render(data, lang)
    summary = {"organization": cs.organization, "period_from": period_from.isoformat(),
               "period_to": period_to.isoformat(), "generated_at": now.isoformat(),
               "overall": worst(r["status"] for r in results), "results": results}
    members = [("report.pdf", pdf),
               ("results.json", json.dumps(summary, ensure_ascii=False, indent=1, default=str).encode()),
               *[(f"extracts/{name}.csv", to_csv(r, EXTRACT_HEADERS[name])) for name, r in rows.items()],
               ("audit-anchor.json", json.dumps(anchor.as_dict(), indent=1).encode()),
               *members]
    key = orgkey.load_or_create(home)
    manifest = bundle.build(out, members, key, created_at=now, progress=say,
                            meta={"organization": cs.organization, "period_from": period_from.isoformat(),
                                  "period_to": period_to.isoformat(), "lang": lang, "exported_by": actor})
    async with conn.transaction():
        await audit.append(conn, [audit.Entry(actor, "compliance.exported", "evidence_bundle", out.name, {
            "period_from": period_from, "period_to": period_to, "lang": lang, "files": len(manifest["files"]),
            "signer": orgkey.fingerprint(key), "audit_entries": anchor.count})])
    say(f"done: {out} ({len(manifest['files'])} files, signed by {orgkey.fingerprint(key)})")
    return manifest
