"""The compliance report as a PDF, in Kazakh (default), Russian or English.

Every row of chapter 3 with its status, explanation and evidence over the period, then the charts an
inspector reads faster than tables (signals received per day, the groups' duty coverage, the
distribution of response times), the registered documents and the audit chain's state.

Fonts: the PDF core fonts have no Cyrillic, let alone Ә Ғ Қ Ң Ө Ұ Ү Һ І. DejaVu Sans covers them and
ships with matplotlib, which draws the charts anyway, so no font file is fetched or vendored.
The creation date is fixed to the bundle's time, so the same inputs give the same bytes.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

LANGS = ("kk", "ru", "en")

TEXT: dict[str, dict[str, str]] = {
    "title": {"kk": "Біліктілік талаптарына сәйкестік туралы есеп",
              "ru": "Отчёт о соответствии квалификационным требованиям",
              "en": "Report on compliance with the qualification requirements"},
    "basis": {"kk": "ҚР ІІМ № 959 бұйрығы (№ 353 бұйрықпен өзгертілген), 3-тарау: орталықтандырылған күзет пульті",
              "ru": "Приказ МВД РК № 959 (в ред. приказа № 353), глава 3: пульт централизованной охраны",
              "en": "Order No. 959 of the Ministry of Internal Affairs (as amended by Order No. 353), chapter 3"},
    "organization": {"kk": "Ұйым", "ru": "Организация", "en": "Organization"},
    "period": {"kk": "Кезең", "ru": "Период", "en": "Period"},
    "generated": {"kk": "Жасалған уақыты", "ru": "Сформирован", "en": "Generated"},
    "summary": {"kk": "Қорытынды", "ru": "Сводка", "en": "Summary"},
    "row": {"kk": "Жол", "ru": "Строка", "en": "Row"},
    "requirement": {"kk": "Талап", "ru": "Требование", "en": "Requirement"},
    "status": {"kk": "Мәртебесі", "ru": "Статус", "en": "Status"},
    "evidence": {"kk": "Дәлелдер", "ru": "Доказательства", "en": "Evidence"},
    "charts": {"kk": "Кезеңдегі көрсеткіштер", "ru": "Показатели за период", "en": "Figures over the period"},
    "signals_per_day": {"kk": "Тәулігіне қабылданған сигналдар", "ru": "Принятые сигналы по дням",
                        "en": "Signals received per day"},
    "coverage": {"kk": "Жедел топтардың кезекшілікпен қамтылуы, %", "ru": "Покрытие дежурствами групп реагирования, %",
                 "en": "Duty coverage of the response groups, %"},
    "response_times": {"kk": "Объектіге келу уақытының таралуы", "ru": "Распределение времени прибытия на объект",
                       "en": "Distribution of the time to arrive on site"},
    "minutes": {"kk": "минут", "ru": "минут", "en": "minutes"},
    "alarms": {"kk": "дабылдар", "ru": "тревоги", "en": "alarms"},
    "signals": {"kk": "сигналдар", "ru": "сигналы", "en": "signals"},
    "no_data": {"kk": "Кезеңде деректер жоқ", "ru": "Нет данных за период", "en": "No data over the period"},
    "documents": {"kk": "Тіркелген құжаттар", "ru": "Зарегистрированные документы", "en": "Registered documents"},
    "valid_until": {"kk": "жарамды", "ru": "действует до", "en": "valid until"},
    "audit": {"kk": "Аудит журналының тізбегі", "ru": "Цепочка журнала аудита", "en": "Audit log chain"},
    "audit_ok": {"kk": "Тізбек бүтін: {n} жазба, соңғы хэш {h}", "ru": "Цепочка цела: {n} записей, последний хэш {h}",
                 "en": "Chain intact: {n} entries, last hash {h}"},
    "audit_bad": {"kk": "Тізбек бұзылған: {reason} (жазба {id})", "ru": "Цепочка нарушена: {reason} (запись {id})",
                  "en": "Chain broken: {reason} (entry {id})"},
    "integrity": {"kk": "Бұл есеп қол қойылған дәлелдер пакетінің бөлігі. Әр файлдың SHA-256 хэші manifest.json "
                        "ішінде, ал ұйымның Ed25519 қолы manifest.sig ішінде; тексеру: kuzet compliance verify.",
                  "ru": "Этот отчёт входит в подписанный пакет доказательств. SHA-256 каждого файла указан в "
                        "manifest.json, подпись Ed25519 организации — в manifest.sig; проверка: kuzet compliance verify.",
                  "en": "This report is part of a signed evidence bundle. Every file's SHA-256 is in manifest.json, "
                        "the organization's Ed25519 signature in manifest.sig; check with: kuzet compliance verify."},
    "page": {"kk": "бет", "ru": "стр.", "en": "page"},
    "met": {"kk": "Орындалды", "ru": "Выполнено", "en": "Met"},
    "warning": {"kk": "Ескерту", "ru": "Предупреждение", "en": "Warning"},
    "not-met": {"kk": "Орындалмады", "ru": "Не выполнено", "en": "Not met"},
    "insufficient-evidence": {"kk": "Дәлел жеткіліксіз", "ru": "Недостаточно доказательств",
                              "en": "Insufficient evidence"},
}

STATUS_COLOURS = {"met": (22, 128, 60), "warning": (196, 120, 0), "not-met": (190, 30, 30),
                  "insufficient-evidence": (90, 90, 90)}


def tr(key: str, lang: str, **kw: Any) -> str:
    entry = TEXT[key]
    return (entry.get(lang) or entry["kk"]).format(**kw)


def pick(value: Any, lang: str) -> str:
    """A {kk, ru, en} mapping in `lang` (Kazakh, then anything, as fallbacks), or the value as text."""
    if isinstance(value, dict):
        return str(value.get(lang) or value.get("kk") or next(iter(value.values()), ""))
    return "" if value is None else str(value)


@dataclass(slots=True)
class ReportData:
    organization: str
    period_from: date
    period_to: date
    generated_at: datetime
    results: list[dict[str, Any]]
    signals_per_day: list[tuple[date, int]] = field(default_factory=list)
    coverage: list[tuple[str, float]] = field(default_factory=list)  # group, % of the period on duty
    response_minutes: list[float] = field(default_factory=list)  # time to arrive on site, per response
    documents: list[dict[str, Any]] = field(default_factory=list)  # kind, number, valid_until
    audit: dict[str, Any] = field(default_factory=dict)  # ok, entries, last_hash, first_bad_id, reason


def _font_dir() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def _chart_png(kind: str, data: ReportData, lang: str) -> bytes | None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(7.2, 2.6), dpi=110)
    try:
        if kind == "signals_per_day":
            if not data.signals_per_day:
                return None
            days = [d for d, _ in data.signals_per_day]
            counts = [n for _, n in data.signals_per_day]
            ax.bar(days, counts, color="#2b6cb0", width=0.8)  # type: ignore[arg-type]  # matplotlib takes dates
            ax.set_ylabel(tr("signals", lang))
            fig.autofmt_xdate()
        elif kind == "coverage":
            if not data.coverage:
                return None
            names = [g for g, _ in data.coverage]
            values = [v for _, v in data.coverage]
            ax.barh(names, values, height=0.5, color=["#16803c" if v >= 99.5 else "#c47800" for v in values])
            ax.set_xlim(0, 100)
            ax.invert_yaxis()
        else:
            if not data.response_minutes:
                return None
            ax.hist(data.response_minutes, bins=min(20, max(5, len(data.response_minutes) // 3)), color="#6b46c1")
            ax.set_xlabel(tr("minutes", lang))
            ax.set_ylabel(tr("alarms", lang))
        ax.set_title(tr(kind, lang), fontsize=10)
        ax.grid(axis="y" if kind != "coverage" else "x", alpha=0.3)
        fig.tight_layout()
        out = io.BytesIO()
        fig.savefig(out, format="png", metadata={"Software": None})
        return out.getvalue()
    finally:
        plt.close(fig)


def render(data: ReportData, lang: str = "kk") -> bytes:
    """The report as PDF bytes."""
    from fpdf import FPDF

    if lang not in LANGS:
        raise ValueError(f"language must be one of {', '.join(LANGS)}")

    class Report(FPDF):
        def footer(self) -> None:
            self.set_y(-12)
            self.set_font("DejaVu", "", 8)
            self.set_text_color(110, 110, 110)
            self.cell(0, 6, f"Kuzet · {tr('title', lang)} · {tr('page', lang)} {self.page_no()}", align="C")

    pdf = Report(format="A4")
    pdf.set_creation_date(data.generated_at)
    pdf.set_title(tr("title", lang))
    pdf.set_creator("Kuzet")
    pdf.set_lang(lang)
    fonts = _font_dir()
    pdf.add_font("DejaVu", "", str(fonts / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(fonts / "DejaVuSans-Bold.ttf"))
    pdf.set_margins(15, 15, 15)
    pdf.set_auto_page_break(True, margin=16)
    pdf.add_page()
    width = pdf.w - 30

    def para(text: str, size: float = 10, style: str = "", colour: Sequence[int] = (0, 0, 0), h: float = 5.2) -> None:
        pdf.set_font("DejaVu", style, size)
        pdf.set_text_color(*colour)
        pdf.multi_cell(width, h, text, new_x="LMARGIN", new_y="NEXT")

    para(tr("title", lang), 16, "B", h=8)
    para(tr("basis", lang), 10, colour=(60, 60, 60))
    pdf.ln(2)
    para(f"{tr('organization', lang)}: {data.organization}")
    para(f"{tr('period', lang)}: {data.period_from.isoformat()} — {data.period_to.isoformat()}")
    para(f"{tr('generated', lang)}: {data.generated_at.strftime('%Y-%m-%d %H:%M %Z').strip()}")
    pdf.ln(3)

    # Summary table: row, requirement, status.
    para(tr("summary", lang), 12, "B", h=7)
    pdf.set_font("DejaVu", "B", 9)
    pdf.set_text_color(0, 0, 0)
    col = (16, width - 16 - 46, 46)
    for w, head in zip(col, (tr("row", lang), tr("requirement", lang), tr("status", lang)), strict=True):
        pdf.cell(w, 6, head, border=1)
    pdf.ln()
    pdf.set_font("DejaVu", "", 9)
    for r in data.results:
        status = str(r.get("status", ""))
        title = pick(r.get("title"), lang)
        wrapped = pdf.multi_cell(col[1], 5, title, dry_run=True, output="LINES")
        lines = max(1, len(wrapped) if isinstance(wrapped, list) else 1)
        h = 5 * lines
        if pdf.get_y() + h > pdf.page_break_trigger:
            pdf.add_page()
        y = pdf.get_y()
        pdf.set_text_color(0, 0, 0)
        pdf.cell(col[0], h, str(r.get("row", "")), border=1)
        pdf.multi_cell(col[1], 5, title, border=1, new_x="RIGHT", new_y="TOP")
        pdf.set_text_color(*STATUS_COLOURS.get(status, (0, 0, 0)))
        pdf.set_font("DejaVu", "B", 9)
        pdf.cell(col[2], h, TEXT[status][lang] if status in TEXT else status, border=1)
        pdf.set_font("DejaVu", "", 9)
        pdf.set_xy(pdf.l_margin, y + h)
    pdf.ln(4)

    # Each row in full.
    for r in data.results:
        status = str(r.get("status", ""))
        para(f"{r.get('row', '')}. {pick(r.get('title'), lang)}", 11, "B", h=6)
        para(TEXT[status][lang] if status in TEXT else status, 10, "B", STATUS_COLOURS.get(status, (0, 0, 0)))
        para(pick(r.get("explanation"), lang), 10)
        evidence = r.get("evidence") or []
        if evidence:
            para(tr("evidence", lang) + ":", 9, "B", colour=(60, 60, 60))
            for e in evidence:
                label = pick(e.get("label"), lang)
                value = e.get("value")
                text = f"• {label}: {pick(value, lang)}" if value not in (None, "") else f"• {label}"
                para(text, 9, colour=(40, 40, 40), h=4.6)
        pdf.ln(3)

    # Charts.
    charts = [c for c in (_chart_png(k, data, lang) for k in ("signals_per_day", "coverage", "response_times")) if c]
    pdf.add_page()
    para(tr("charts", lang), 12, "B", h=7)
    if not charts:
        para(tr("no_data", lang))
    for png in charts:
        if pdf.get_y() + 70 > pdf.page_break_trigger:
            pdf.add_page()
        pdf.image(io.BytesIO(png), w=width)
        pdf.ln(2)

    # Documents and the audit chain.
    if data.documents:
        para(tr("documents", lang), 12, "B", h=7)
        for d in data.documents:
            until = d.get("valid_until")
            tail = f", {tr('valid_until', lang)} {until}" if until else ""
            para(f"• {pick(d.get('kind_label') or d.get('kind'), lang)} № {d.get('number', '')}{tail}", 9, h=4.6)
        pdf.ln(3)
    if data.audit:
        para(tr("audit", lang), 12, "B", h=7)
        a = data.audit
        if a.get("ok"):
            para(tr("audit_ok", lang, n=a.get("entries", 0), h=str(a.get("last_hash", ""))[:16]), 10)
        else:
            para(tr("audit_bad", lang, reason=a.get("reason", ""), id=a.get("first_bad_id", "")), 10, "B",
                 STATUS_COLOURS["not-met"])
        pdf.ln(3)
    para(tr("integrity", lang), 8, colour=(90, 90, 90), h=4.2)
    return bytes(pdf.output())
