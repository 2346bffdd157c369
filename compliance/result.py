"""What a check returns (CheckResult, Evidence) and the small kit the rows' checks share (Ctx, Row,
the common rule for documents)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from compliance import document
from compliance.settings import ComplianceSettings

Text = dict[str, str]
STATUSES = ("met", "warning", "insufficient-evidence", "not-met")  # from best to worst
_RANK = {s: i for i, s in enumerate(STATUSES)}
TITLES: dict[str, Text] = {}  # filled by compliance.check


def t(kk: str, ru: str, en: str) -> Text:
    return {"kk": kk, "ru": ru, "en": en}


def worst(statuses: Iterable[str]) -> str:
    return max(statuses, key=_RANK.__getitem__, default="met")


@dataclass(slots=True)
class Evidence:
    kind: str  # "document" | "figure" | "table"
    label: Text
    value: Any
    document_id: int | None = None
    detail: Any = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind, "label": self.label, "value": _plain(self.value)}
        if self.document_id is not None:
            d["document_id"] = self.document_id
        if self.detail is not None:
            d["detail"] = _plain(self.detail)
        return d


@dataclass(slots=True)
class CheckResult:
    row: str
    title: Text
    status: str
    explanation: Text
    evidence: list[Evidence]
    period_from: dt.date
    period_to: dt.date

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "title": self.title, "status": self.status, "explanation": self.explanation,
                "evidence": [e.to_dict() for e in self.evidence], "period_from": self.period_from.isoformat(),
                "period_to": self.period_to.isoformat()}


def _plain(v: Any) -> Any:
    """JSON-ready: dates as ISO strings, tuples as lists, recursively."""
    if isinstance(v, dt.datetime | dt.date):
        return v.isoformat()
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    return v


@dataclass(slots=True)
class Ctx:
    """What every row's check gets."""
    conn: asyncpg.Connection
    period_from: dt.date
    period_to: dt.date
    settings: ComplianceSettings
    docs: list[dict[str, Any]]
    now: dt.datetime

    @property
    def as_of(self) -> dt.date:
        return self.period_to

    def of_kind(self, *kinds: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] in kinds and document.usable(d)]


@dataclass(slots=True)
class Row:
    """Findings and evidence accumulated by one row's check."""
    row: str
    findings: list[tuple[str, Text]] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)

    def add(self, status: str, text: Text) -> None:
        self.findings.append((status, text))

    def doc(self, d: dict[str, Any]) -> None:
        self.evidence.append(doc_evidence(d))

    def figure(self, label: Text, value: Any, detail: Any = None) -> None:
        self.evidence.append(Evidence("figure", label, value, detail=detail))

    def table(self, label: Text, rows: list[dict[str, Any]], detail: Any = None) -> None:
        self.evidence.append(Evidence("table", label, rows, detail=detail))

    def result(self, ctx: Ctx) -> CheckResult:
        status = worst(s for s, _ in self.findings)
        ordered = sorted(self.findings, key=lambda f: -_RANK[f[0]])
        explanation = {lang: " ".join(text[lang] for _, text in ordered) for lang in ("kk", "ru", "en")}
        return CheckResult(self.row, TITLES[self.row], status, explanation, self.evidence, ctx.period_from,
                           ctx.period_to)


def doc_evidence(d: dict[str, Any]) -> Evidence:
    parts = [f"№ {d['number']}" if d["number"] else "", d["issuer"],
             f"{d['issued_on'] or '…'} – {d['valid_until'] or '∞'}"]
    return Evidence("document", d["label"], ", ".join(p for p in parts if p), document_id=d["id"],
                    detail={"kind": d["kind"], "number": d["number"], "issuer": d["issuer"], "holder": d["holder"],
                            "holder_bin": d["holder_bin"], "issued_on": d["issued_on"],
                            "valid_until": d["valid_until"], "registry_ref": d["registry_ref"],
                            "review_status": d["review_status"], "reviewed_by": d["reviewed_by"],
                            "reviewed_at": d["reviewed_at"], "sha256": d["file_sha256"],
                            "detail": d["detail"]})


def _covered(docs: list[dict[str, Any]], start: dt.date, end: dt.date) -> list[tuple[dt.date, dt.date]]:
    """The gaps in [start, end] that no document's validity covers."""
    spans = sorted(((d["issued_on"] or dt.date.min), (d["valid_until"] or dt.date.max)) for d in docs)
    gaps = []
    cursor = start
    for a, b in spans:
        if a > cursor:
            gaps.append((cursor, min(a - dt.timedelta(days=1), end)))
        if b >= cursor:
            cursor = b + dt.timedelta(days=1) if b < dt.date.max else dt.date.max
        if cursor > end:
            break
    if cursor <= end:
        gaps.append((cursor, end))
    return [g for g in gaps if g[0] <= g[1] and g[0] <= end]


def continuous_until(docs: list[dict[str, Any]], day: dt.date) -> dt.date | None:
    """The last day of the unbroken validity that covers `day`, counting renewals registered ahead
    (None: open-ended)."""
    cursor = day - dt.timedelta(days=1)
    while True:
        nxt = [d["valid_until"] for d in docs
               if (d["issued_on"] is None or d["issued_on"] <= cursor + dt.timedelta(days=1))
               and (d["valid_until"] is None or d["valid_until"] > cursor)]
        if not nxt:
            return cursor
        if None in nxt:
            return None
        cursor = max(e for e in nxt if e is not None)


def require_documents(ctx: Ctx, row: Row, docs: list[dict[str, Any]], what: Text, *,
                      check: Callable[[dict[str, Any]], Text | None] | None = None) -> list[dict[str, Any]]:
    """The common rule for a document-based requirement; returns the documents that count on as_of."""
    for d in docs:
        row.doc(d)
    refused: list[tuple[dict[str, Any], Text]] = []
    if check is not None:
        keep = []
        for d in docs:
            why = check(d)
            if why is None:
                keep.append(d)
            else:
                refused.append((d, why))
        docs = keep
    for _d, why in refused:
        row.add("not-met" if not docs else "warning", why)
    valid = [d for d in docs if document.valid_on(d, ctx.as_of)]
    if not valid:
        expired = [d for d in docs if d["valid_until"] is not None and d["valid_until"] < ctx.as_of]
        if expired:
            last = max(d["valid_until"] for d in expired)
            row.add("not-met", t(f"{what['kk']}: мерзімі {last} аяқталған.", f"{what['ru']}: срок истёк {last}.",
                                 f"{what['en']}: expired on {last}."))
        elif not refused:
            row.add("not-met", t(f"{what['kk']}: тіркелген құжат жоқ.", f"{what['ru']}: документ не зарегистрирован.",
                                 f"{what['en']}: no document is registered."))
        return []
    accepted = [d for d in valid if d["review_status"] == "accepted"]
    if not accepted:
        row.add("warning", t(f"{what['kk']}: құжат тіркелген, бірақ әлі тексерілмеген.",
                             f"{what['ru']}: документ зарегистрирован, но ещё не проверен.",
                             f"{what['en']}: the document is registered but not reviewed yet."))
    gaps = _covered(docs, ctx.period_from, ctx.as_of)
    if gaps:
        g = "; ".join(f"{a} – {b}" for a, b in gaps)
        row.add("warning", t(f"{what['kk']}: кезеңнің бір бөлігі құжатпен жабылмаған ({g}).",
                             f"{what['ru']}: часть периода не покрыта документом ({g}).",
                             f"{what['en']}: part of the period is not covered by a document ({g})."))
    end = continuous_until(docs, ctx.as_of)
    if end is not None and end <= ctx.as_of + dt.timedelta(days=ctx.settings.expiry_warn_days):
        row.add("warning", t(f"{what['kk']}: мерзімі {end} аяқталады — ұзартыңыз.",
                             f"{what['ru']}: срок истекает {end} — продлите.",
                             f"{what['en']}: expires on {end} — renew it."))
    if accepted and not gaps:
        row.add("met", t(f"{what['kk']}: бар және жарамды.", f"{what['ru']}: имеется и действует.",
                         f"{what['en']}: present and valid."))
    return valid


def holder_check(ctx: Ctx, what: Text) -> Callable[[dict[str, Any]], Text | None]:
    """When the organization's BIN is configured, an ownership document must be held by it."""
    bin_ = ctx.settings.organization_bin.strip()

    def check(d: dict[str, Any]) -> Text | None:
        if bin_ and d["holder_bin"] and d["holder_bin"].strip() != bin_:
            return t(f"{what['kk']} № {d['number']}: иесі ({d['holder_bin']}) ұйым емес ({bin_}).",
                     f"{what['ru']} № {d['number']}: владелец ({d['holder_bin']}) — не организация ({bin_}).",
                     f"{what['en']} No. {d['number']}: held by {d['holder_bin']}, not by the organization ({bin_}).")
        return None

    return check


