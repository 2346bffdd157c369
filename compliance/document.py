"""The document registry: every document chapter 3 (and chapters 1-2 for the personnel) asks the
licensee to hold, with its number, issuer, holder, dates, the file with its SHA-256, who registered
it and who reviewed it.

Files are stored by content in `<home>/documents/<sha256>` (mode 0600, directory 0700), outside
anything the web server serves; they are read only through `file_path()` by a route that checks
the role. A document is never deleted: a replaced or wrong one is withdrawn, and the checks ignore
withdrawn and rejected documents.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from compliance import filecheck
from console import audit

Text = dict[str, str]


@dataclass(frozen=True, slots=True)
class Kind:
    row: str  # the check that uses it: "3.1".."3.6" for chapter 3, "personnel" for chapters 1-2
    label: Text
    link: str = ""  # "person", "group" or "vehicle": the document must name one
    detail: tuple[str, ...] = ()  # detail keys that must be given
    choices: dict[str, tuple[str, ...]] = field(default_factory=dict)  # allowed values of detail keys


def _t(kk: str, ru: str, en: str) -> Text:
    return {"kk": kk, "ru": ru, "en": en}


KINDS: dict[str, Kind] = {
    # Chapter 3 row 1: the licence (from the E-licensing state database)
    "security_licence": Kind("3.1", _t("Күзет қызметіне лицензия", "Лицензия на охранную деятельность",
                                       "Security activity licence")),
    # Row 2: premises of the centralized security post, owned or leased
    "premises_ownership": Kind("3.2", _t("Үй-жайға меншік құқығын растайтын құжат",
                                         "Документ о праве собственности на помещение",
                                         "Title to the premises (ownership)"), detail=("address",)),
    "premises_lease": Kind("3.2", _t("Үй-жайды жалға алу шарты", "Договор аренды помещения",
                                     "Lease of the premises"), detail=("address",)),
    # Row 3: staffing table; technical documentation of the console equipment and of the own server
    "staffing_table": Kind("3.3", _t("Штаттық кесте", "Штатное расписание", "Staffing table")),
    "console_equipment": Kind("3.3", _t("Пульт жабдығының техникалық құжаттамасы",
                                        "Техническая документация оборудования пульта",
                                        "Technical documentation of the console equipment"),
                              detail=("inventory_number",)),
    "server_equipment": Kind("3.3", _t("Меншікті сервердің техникалық құжаттамасы",
                                       "Техническая документация собственного сервера",
                                       "Technical documentation of the own server"),
                             detail=("inventory_number",)),
    # Row 4: radio communication
    "radio_permit": Kind("3.4", _t("Радиожиілік спектрін пайдалануға рұқсат",
                                   "Разрешение на использование радиочастотного спектра",
                                   "Radio frequency spectrum permit")),
    "radio_contract": Kind("3.4", _t("Радиобайланыстың абоненттік қызмет көрсету шарты",
                                     "Договор абонентского обслуживания радиосвязи",
                                     "Radio subscriber (lease) service contract")),
    # Row 5: vehicles held in ownership; orders forming the groups and assigning staff
    "vehicle_registration": Kind("3.5", _t("Көлік құралын мемлекеттік тіркеу туралы куәлік",
                                           "Свидетельство о регистрации транспортного средства",
                                           "Vehicle registration certificate"), link="vehicle",
                                 choices={"ownership": ("own", "leased")}),
    "group_formation_order": Kind("3.5", _t("Мобильді топты құру туралы бұйрық",
                                            "Приказ о формировании мобильной группы",
                                            "Order forming a mobile group"), link="group"),
    "staff_assignment_order": Kind("3.5", _t("Қызметкерлерді топқа бекіту туралы бұйрық",
                                             "Приказ о закреплении сотрудников за группой",
                                             "Order assigning staff to a group"), link="group"),
    # Row 6: service weapons
    "weapons_permit": Kind("3.6", _t("Қару мен патрондарды сатып алуға, сақтауға, алып жүруге рұқсат",
                                     "Разрешение на приобретение, хранение и ношение оружия и патронов",
                                     "Permit to acquire, store and carry weapons and cartridges"),
                           detail=("permit_type",),
                           choices={"permit_type": ("acquisition", "storage", "storage_and_carrying")}),
    # Chapters 1-2: the personnel
    "identity_card": Kind("personnel", _t("Жеке куәлік", "Удостоверение личности", "Identity card"), link="person"),
    "diploma": Kind("personnel", _t("Жоғары заң білімі туралы диплом", "Диплом о высшем юридическом образовании",
                                    "Diploma of higher legal education"), link="person"),
    "employment_record": Kind("personnel", _t("Еңбек қызметін растайтын мәліметтер",
                                              "Сведения о трудовой деятельности", "Employment record"),
                              link="person"),
    "training_certificate": Kind("personnel", _t("Мамандандырылған оқу орталығының куәлігі",
                                                 "Свидетельство специализированного учебного центра",
                                                 "Certificate of a specialized training centre"), link="person"),
    "medical_certificate": Kind("personnel", _t("Психикалық денсаулық саласындағы ұйымның анықтамасы",
                                                "Справка организации в области психического здоровья",
                                                "Mental-health organization's certificate"), link="person"),
    "criminal_record_certificate": Kind("personnel", _t("Соттылығының бар-жоғы туралы анықтама",
                                                        "Справка о наличии либо отсутствии судимости",
                                                        "Certificate of criminal record or its absence"),
                                        link="person"),
    "offence_information": Kind("personnel", _t("Құқық бұзушылықтар туралы мәліметтер",
                                                "Сведения о правонарушениях", "Information on offences"),
                                link="person"),
    "other": Kind("other", _t("Басқа құжат", "Иной документ", "Other document")),
}

REVIEW_STATUSES = ("pending", "accepted", "rejected")


class DocumentError(ValueError):
    """A request the registry refuses; `field` names what is wrong (for a 422)."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


class ReviewConflict(Exception):
    """The review cannot be done in the document's state (409)."""


def storage_dir(home: Path) -> Path:
    return home / "documents"


def store_file(home: Path, content: bytes) -> str:
    """Write the file by its SHA-256 (idempotent) and return the hex digest."""
    digest = hashlib.sha256(content).hexdigest()
    folder = storage_dir(home)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    target = folder / digest
    if not target.exists():
        tmp = folder / f".{digest}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    return digest


def file_path(home: Path, doc: dict[str, Any]) -> Path:
    """Where a registered document's file is (for download and for the evidence bundle)."""
    digest = str(doc["file_sha256"])
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError("bad digest")
    return storage_dir(home) / digest


def file_name(doc: dict[str, Any]) -> str:
    """A safe download name: kind-number.ext (the uploaded name is shown, never trusted)."""
    number = "".join(c if c.isalnum() or c in "-_" else "_" for c in str(doc.get("number") or doc["id"]))[:60]
    return f"{doc['kind']}-{number}{filecheck.EXTENSIONS[doc['file_type']]}"


def _validate(kind: str, detail: dict[str, Any], person_id: int | None, group_id: int | None,
              vehicle_id: int | None, issued_on: dt.date | None, valid_until: dt.date | None) -> Kind:
    k = KINDS.get(kind)
    if k is None:
        raise DocumentError("kind", f"unknown document kind {kind!r}")
    links = {"person": person_id, "group": group_id, "vehicle": vehicle_id}
    if k.link and links[k.link] is None:
        raise DocumentError(f"{k.link}_id", f"a {kind} document must name its {k.link}")
    for key in k.detail:
        if not str(detail.get(key, "")).strip():
            raise DocumentError(f"detail.{key}", f"required for a {kind} document")
    for key, allowed in k.choices.items():
        if key in detail and detail[key] not in allowed:
            raise DocumentError(f"detail.{key}", f"must be one of {', '.join(allowed)}")
    if issued_on and valid_until and valid_until < issued_on:
        raise DocumentError("valid_until", "is before the issue date")
    return k


async def register(conn: asyncpg.Connection, home: Path, *, kind: str, content: bytes, actor: str,
                   max_bytes: int, file_name: str = "", number: str = "", title: str = "", issuer: str = "",
                   holder: str = "", holder_bin: str = "", issued_on: dt.date | None = None,
                   valid_until: dt.date | None = None, registry_ref: str = "",
                   detail: dict[str, Any] | None = None, person_id: int | None = None,
                   group_id: int | None = None, vehicle_id: int | None = None) -> dict[str, Any]:
    """Check the file by content, store it, record the document (pending review), audit it."""
    detail = dict(detail or {})
    _validate(kind, detail, person_id, group_id, vehicle_id, issued_on, valid_until)
    if len(content) > max_bytes:
        raise DocumentError("file", f"larger than the limit of {max_bytes} bytes")
    try:
        file_type = filecheck.sniff(content)
    except filecheck.FileRejected as e:
        raise DocumentError("file", str(e)) from e
    for name, ref, table in (("person_id", person_id, "compliance_personnel"), ("group_id", group_id, "response_groups"),
                             ("vehicle_id", vehicle_id, "vehicles")):
        if ref is not None and not await conn.fetchval(f"SELECT 1 FROM {table} WHERE id = $1", ref):
            raise DocumentError(name, f"no such {name[:-3]} {ref}")
    digest = store_file(home, content)
    async with conn.transaction():
        doc_id: int = await conn.fetchval(
            "INSERT INTO compliance_documents (kind, number, title, issuer, holder, holder_bin, issued_on, valid_until,"
            " registry_ref, detail, person_id, group_id, vehicle_id, file_sha256, file_type, file_size, file_name,"
            " registered_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
            " RETURNING id",
            kind, number, title, issuer, holder, holder_bin, issued_on, valid_until, registry_ref, detail,
            person_id, group_id, vehicle_id, digest, file_type, len(content), file_name[:255], actor)
        await audit.append(conn, [audit.Entry(actor, "document.registered", "document", str(doc_id),
                                              {"kind": kind, "number": number, "sha256": digest,
                                               "valid_until": valid_until})])
    doc = await get(conn, doc_id)
    assert doc is not None
    return doc


async def review(conn: asyncpg.Connection, doc_id: int, *, status: str, actor: str, note: str = "") -> dict[str, Any]:
    """Accept or reject a registered document. Four eyes: the reviewer is not who registered it."""
    if status not in ("accepted", "rejected"):
        raise DocumentError("status", "must be accepted or rejected")
    async with conn.transaction():
        row = await conn.fetchrow("SELECT registered_by, withdrawn_at FROM compliance_documents WHERE id = $1"
                                  " FOR UPDATE", doc_id)
        if row is None:
            raise LookupError(doc_id)
        if row["withdrawn_at"] is not None:
            raise ReviewConflict("the document was withdrawn")
        if row["registered_by"] == actor:
            raise ReviewConflict("a document is reviewed by someone other than who registered it")
        await conn.execute("UPDATE compliance_documents SET review_status = $2, reviewed_by = $3, reviewed_at = now(),"
                           " review_note = $4 WHERE id = $1", doc_id, status, actor, note)
        await audit.append(conn, [audit.Entry(actor, f"document.{status}", "document", str(doc_id), {"note": note})])
    doc = await get(conn, doc_id)
    assert doc is not None
    return doc


async def withdraw(conn: asyncpg.Connection, doc_id: int, *, actor: str, reason: str = "") -> dict[str, Any]:
    async with conn.transaction():
        done = await conn.fetchval("UPDATE compliance_documents SET withdrawn_at = now(), withdrawn_by = $2"
                                   " WHERE id = $1 AND withdrawn_at IS NULL RETURNING id", doc_id, actor)
        if done is None:
            if not await conn.fetchval("SELECT 1 FROM compliance_documents WHERE id = $1", doc_id):
                raise LookupError(doc_id)
            raise ReviewConflict("the document is already withdrawn")
        await audit.append(conn, [audit.Entry(actor, "document.withdrawn", "document", str(doc_id), {"reason": reason})])
    doc = await get(conn, doc_id)
    assert doc is not None
    return doc


_SELECT = ("SELECT d.*, p.full_name AS person_name, g.name AS group_name, v.plate AS vehicle_plate"
           " FROM compliance_documents d LEFT JOIN compliance_personnel p ON p.id = d.person_id"
           " LEFT JOIN response_groups g ON g.id = d.group_id LEFT JOIN vehicles v ON v.id = d.vehicle_id")


def _doc(r: asyncpg.Record) -> dict[str, Any]:
    d = dict(r)
    k = KINDS.get(d["kind"])
    d["label"] = k.label if k else {"kk": d["kind"], "ru": d["kind"], "en": d["kind"]}
    d["row"] = k.row if k else "other"
    return d


async def get(conn: asyncpg.Connection | asyncpg.Pool, doc_id: int) -> dict[str, Any] | None:
    r = await conn.fetchrow(_SELECT + " WHERE d.id = $1", doc_id)
    return _doc(r) if r else None


async def list_documents(conn: asyncpg.Connection | asyncpg.Pool, *, kind: str | None = None,
                         person_id: int | None = None, include_withdrawn: bool = False) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        _SELECT + " WHERE ($1::text IS NULL OR d.kind = $1) AND ($2::bigint IS NULL OR d.person_id = $2)"
        " AND ($3 OR d.withdrawn_at IS NULL) ORDER BY d.kind, d.valid_until NULLS LAST, d.id",
        kind, person_id, include_withdrawn)
    return [_doc(r) for r in rows]


def __getattr__(name: str) -> Any:
    # `compliance.document.list(...)`: the short name other modules use, without shadowing the builtin here
    if name == "list":
        return list_documents
    raise AttributeError(name)


def usable(doc: dict[str, Any]) -> bool:
    """Counts as evidence at all: not withdrawn, not rejected."""
    return doc["withdrawn_at"] is None and doc["review_status"] != "rejected"


def valid_on(doc: dict[str, Any], day: dt.date) -> bool:
    return ((doc["issued_on"] is None or doc["issued_on"] <= day)
            and (doc["valid_until"] is None or doc["valid_until"] >= day))


def _subject(doc: dict[str, Any]) -> tuple[Any, ...]:
    return (doc["kind"], doc["person_id"], doc["group_id"], doc["vehicle_id"])


async def warnings(conn: asyncpg.Connection | asyncpg.Pool, *, today: dt.date, warn_days: int) -> list[dict[str, Any]]:
    """Documents that expire within `warn_days` of `today` or have expired, unless a later document
    of the same kind for the same subject (person, group, vehicle) replaces them."""
    docs = [d for d in await list_documents(conn) if usable(d)]
    latest: dict[tuple[Any, ...], dt.date] = {}
    for d in docs:
        end = d["valid_until"] or dt.date.max
        key = _subject(d)
        latest[key] = max(latest.get(key, dt.date.min), end)
    out = []
    for d in docs:
        end = d["valid_until"]
        if end is None or end > today + dt.timedelta(days=warn_days) or latest[_subject(d)] > end:
            continue
        days_left = (end - today).days
        out.append({"document_id": d["id"], "kind": d["kind"], "label": d["label"], "number": d["number"],
                    "valid_until": end, "days_left": days_left, "expired": days_left < 0, "row": d["row"],
                    "person": d["person_name"], "group": d["group_name"], "vehicle": d["vehicle_plate"]})
    out.sort(key=lambda w: w["days_left"])
    return out
