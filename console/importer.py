"""Importing the objects a post brings from its old console: one CSV file, every row checked, all or nothing.

The file has a header row; columns (any order, names case-insensitive; `;` or `,` separated; UTF-8
or, as Excel saves it on Russian Windows, CP1251):

    name*, address, latitude, longitude, account*, prefix, protocol, aes_key, key_format,
    supervision_interval, terror_vulnerable, instructions, zones, keyholders, contacts

(* required). `zones` is `001=Entrance; 002=Windows`; `keyholders` and `contacts` are
`Name|+7 701 555 12 34; Name|phone` in calling order (keyholders are called first). Every problem
is reported with its line (the header is line 1) and column; if there is any, nothing is imported.
Duplicate accounts (the same prefix and number) within the file or against the database are
errors. The rows go in as one transaction with one statement per table, so thousands take seconds.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from console import account, audit

COLUMNS = ("name", "address", "latitude", "longitude", "account", "prefix", "protocol", "aes_key", "key_format",
           "supervision_interval", "terror_vulnerable", "instructions", "zones", "keyholders", "contacts")
REQUIRED = ("name", "account")
MAX_ROWS = 50_000
MAX_PROBLEMS = 1000  # reported; counting goes on
LIMITS = {"name": 300, "address": 500, "instructions": 10_000, "aes_key": 64}
TRUE = {"1", "yes", "y", "true", "да", "д", "иә", "иа", "+"}
FALSE = {"", "0", "no", "n", "false", "нет", "н", "жоқ", "жок", "-"}
PHONE = re.compile(r"^[0-9+()\-\s]{0,50}$")
ZONE_NUMBER = re.compile(r"^[0-9A-Za-z]{1,10}$")

Progress = Callable[[str, int, int], None]  # phase, done, total


@dataclass(slots=True)
class Problem:
    line: int
    column: str
    code: str  # for translation: required, too_long, not_a_number, out_of_range, ...
    message: str  # English
    ctx: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "column": self.column, "code": self.code, "message": self.message, "ctx": self.ctx}

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column or '-'}: {self.message}"


@dataclass(slots=True)
class Row:
    line: int
    name: str
    address: str
    latitude: float | None
    longitude: float | None
    terror_vulnerable: bool
    instructions: str
    account: str
    prefix: str
    protocol: str
    aes_key: str | None
    key_format: str
    supervision_interval: int | None
    zones: list[tuple[str, str]]
    contacts: list[tuple[str, str, str]]  # name, phone, role


@dataclass(slots=True)
class Result:
    imported: int
    problems: list[Problem]
    rows: int  # data rows in the file
    more_problems: int = 0  # beyond MAX_PROBLEMS, not listed

    @property
    def ok(self) -> bool:
        return not self.problems


def decode(data: bytes) -> str:
    """UTF-8 (with or without BOM), else CP1251 (Excel on Russian Windows)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1251")


class _Checker:
    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.count = 0
        self.data_rows = 0

    def add(self, line: int, column: str, code: str, message: str, **ctx: Any) -> None:
        self.count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(line, column, code, message, ctx))


def _number(c: _Checker, line: int, col: str, text: str, lo: float, hi: float) -> float | None:
    if not text:
        return None
    try:
        v = float(text.replace(",", "."))
    except ValueError:
        c.add(line, col, "not_a_number", f"{text!r} is not a number", value=text)
        return None
    if not math.isfinite(v) or not lo <= v <= hi:
        c.add(line, col, "out_of_range", f"{text} is outside {lo:g}..{hi:g}", min=lo, max=hi, value=text)
        return None
    return v


def _items(text: str) -> list[str]:
    return [p.strip() for p in text.split(";") if p.strip()]


def _row(c: _Checker, line: int, rec: dict[str, str]) -> Row | None:
    before = c.count
    g = {k: (rec.get(k) or "").strip() for k in COLUMNS}
    for k in REQUIRED:
        if not g[k]:
            c.add(line, k, "required", "is required")
    for k, limit in LIMITS.items():
        if len(g[k]) > limit:
            c.add(line, k, "too_long", f"is longer than {limit} characters", max_length=limit)
    lat = _number(c, line, "latitude", g["latitude"], -90, 90)
    lon = _number(c, line, "longitude", g["longitude"], -180, 180)
    if bool(g["latitude"]) != bool(g["longitude"]):
        missing = "longitude" if g["latitude"] else "latitude"
        c.add(line, missing, "both_coordinates", "give both latitude and longitude, or neither")
    if g["account"] and not re.match(account.NUMBER_PATTERN, g["account"]):
        c.add(line, "account", "pattern", "an account number is 1-16 letters or digits", value=g["account"])
    if not re.match(account.PREFIX_PATTERN, g["prefix"], re.IGNORECASE):
        c.add(line, "prefix", "pattern", "a line prefix looks like L0 or R1L0", value=g["prefix"])
    protocol = g["protocol"] or "dc09"
    if not re.match(account.PROTOCOL_PATTERN, protocol):
        c.add(line, "protocol", "pattern", "a protocol is 1-20 lower-case letters, digits or -", value=protocol)
    key_format = (g["key_format"] or "hex").lower()
    if key_format not in ("hex", "ascii"):
        c.add(line, "key_format", "choice", "key_format is hex or ascii", expected="hex, ascii", value=key_format)
    elif g["aes_key"]:
        try:
            account.key_bytes(g["aes_key"], key_format)
        except ValueError as exc:
            c.add(line, "aes_key", "aes_key", f"{exc} (hex: 32, 48 or 64 hex digits)")
    interval: int | None = None
    if g["supervision_interval"]:
        try:
            interval = int(g["supervision_interval"])
        except ValueError:
            c.add(line, "supervision_interval", "not_an_integer", "is not a whole number of seconds",
                  value=g["supervision_interval"])
        else:
            if not account.INTERVAL_MIN <= interval <= account.INTERVAL_MAX:
                c.add(line, "supervision_interval", "out_of_range",
                      f"is outside {account.INTERVAL_MIN}..{account.INTERVAL_MAX} seconds",
                      min=account.INTERVAL_MIN, max=account.INTERVAL_MAX, value=g["supervision_interval"])
    tv = g["terror_vulnerable"].lower()
    if tv not in TRUE | FALSE:
        c.add(line, "terror_vulnerable", "yes_no", "is yes or no (1/0, да/нет, иә/жоқ)", value=g["terror_vulnerable"])
    zones: list[tuple[str, str]] = []
    for item in _items(g["zones"]):
        number, sep, zname = (p.strip() for p in item.partition("="))
        if not sep or not ZONE_NUMBER.match(number) or not zname or len(zname) > 200:
            c.add(line, "zones", "zone_item", f"{item!r}: a zone is number=name (e.g. 001=Entrance)", value=item)
        elif number in {z[0] for z in zones}:
            c.add(line, "zones", "duplicate_zone", f"zone {number} is given twice", value=number)
        else:
            zones.append((number, zname))
    contacts: list[tuple[str, str, str]] = []
    for col, role in (("keyholders", "keyholder"), ("contacts", "contact")):
        for item in _items(g[col]):
            cname, _sep, phone = (p.strip() for p in item.partition("|"))
            if not cname or len(cname) > 200 or not PHONE.match(phone):
                c.add(line, col, "contact_item", f"{item!r}: a contact is Name|phone (digits, + ( ) -)", value=item)
            else:
                contacts.append((cname, phone, role))
    if len(zones) > 512 or len(contacts) > 50:
        c.add(line, "zones" if len(zones) > 512 else "contacts", "too_many", "too many entries (512 zones, 50 contacts)")
    if c.count > before:
        return None
    return Row(line, g["name"], g["address"], lat, lon, tv in TRUE, g["instructions"], g["account"].upper(),
               g["prefix"].upper(), protocol, g["aes_key"] or None, key_format, interval, zones, contacts)


def parse(text: str, progress: Progress | None = None) -> tuple[list[Row], _Checker]:
    """Check every row (nothing touches the database yet)."""
    c = _Checker()
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        c.add(1, "", "empty", "the file is empty (a header row is needed)")
        return [], c
    except csv.Error as exc:
        c.add(1, "", "csv", f"not a CSV file: {exc}")
        return [], c
    names = [h.strip().lower() for h in header]
    for i, h in enumerate(names):
        if h not in COLUMNS:
            c.add(1, header[i].strip(), "unknown_column", f"unknown column; known: {', '.join(COLUMNS)}",
                  expected=", ".join(COLUMNS))
        elif names.index(h) != i:
            c.add(1, h, "duplicate_column", "the column is given twice")
    for k in REQUIRED:
        if k not in names:
            c.add(1, k, "missing_column", "the column is required")
    if c.count:
        return [], c
    rows: list[Row] = []
    seen: dict[tuple[str, str], int] = {}
    start = 2
    total_guess = max(1, text.count("\n"))
    try:
        for rec in reader:
            line = start
            start = reader.line_num + 1
            if not any(v.strip() for v in rec):
                continue  # a blank line
            if len(rec) != len(names):
                c.add(line, "", "columns", f"has {len(rec)} fields, the header {len(names)}", got=len(rec),
                      expected=len(names))
                continue
            c.data_rows += 1
            if c.data_rows > MAX_ROWS:
                c.add(line, "", "too_many_rows", f"more than {MAX_ROWS} rows: split the file", max=MAX_ROWS)
                break
            fields = dict(zip(names, rec, strict=True))
            row = _row(c, line, fields)
            key = ((fields.get("prefix") or "").strip().upper(), (fields.get("account") or "").strip().upper())
            if key[1] and key in seen:
                c.add(line, "account", "duplicate_in_file",
                      f"account {key[0]}#{key[1]} is also on line {seen[key]}", other_line=seen[key])
            elif key[1]:
                seen[key] = line
            if row is not None:
                rows.append(row)
            if progress and c.data_rows % 500 == 0:
                progress("checked", c.data_rows, total_guess)
    except csv.Error as exc:
        c.add(start, "", "csv", f"not valid CSV: {exc}")
    return rows, c


async def import_csv(conn: asyncpg.Connection, text: str, actor: str, *, source: str = "",
                     progress: Progress | None = None) -> Result:
    """Check the file, then import every row in one transaction, or nothing."""
    rows, c = parse(text, progress)
    data_rows = c.data_rows
    if rows:
        taken = await conn.fetch(
            "SELECT a.prefix, a.number FROM accounts a"
            " JOIN unnest($1::text[], $2::text[]) AS v(prefix, number) USING (prefix, number)",
            [r.prefix for r in rows], [r.account for r in rows])
        clash = {(t["prefix"], t["number"]) for t in taken}
        for r in rows:
            if (r.prefix, r.account) in clash:
                c.add(r.line, "account", "exists", f"account {r.prefix}#{r.account} already exists in Kuzet",
                      value=r.account)
    if c.count:
        c.problems.sort(key=lambda p: p.line)
        return Result(0, c.problems, data_rows, c.count - len(c.problems))
    if not rows:
        return Result(0, [Problem(1, "", "no_rows", "the file has no data rows")], 0)
    n = len(rows)
    async with conn.transaction():
        oids = [r[0] for r in await conn.fetch(
            "SELECT nextval('guarded_objects_id_seq') FROM generate_series(1, $1)", n)]
        await conn.execute(
            "INSERT INTO guarded_objects (id, name, address, latitude, longitude, terror_vulnerable, instructions)"
            " SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::float8[], $5::float8[], $6::bool[],"
            " $7::text[])",
            oids, [r.name for r in rows], [r.address for r in rows], [r.latitude for r in rows],
            [r.longitude for r in rows], [r.terror_vulnerable for r in rows], [r.instructions for r in rows])
        if progress:
            progress("objects", n, n)
        aids = [r[0] for r in await conn.fetch("SELECT nextval('accounts_id_seq') FROM generate_series(1, $1)", n)]
        await conn.execute(
            "INSERT INTO accounts (id, number, prefix, protocol, aes_key, key_format, supervision_interval, object_id)"
            " SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],"
            " $7::int[], $8::bigint[])",
            aids, [r.account for r in rows], [r.prefix for r in rows], [r.protocol for r in rows],
            [r.aes_key for r in rows], [r.key_format for r in rows], [r.supervision_interval for r in rows], oids)
        if progress:
            progress("accounts", n, n)
        zones = [(aid, num, zname) for aid, r in zip(aids, rows, strict=True) for num, zname in r.zones]
        if zones:
            await conn.execute("INSERT INTO zones (account_id, number, name)"
                               " SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[])",
                               [z[0] for z in zones], [z[1] for z in zones], [z[2] for z in zones])
        contacts = [(oid, cn, ph, role, i) for oid, r in zip(oids, rows, strict=True)
                    for i, (cn, ph, role) in enumerate(r.contacts, start=1)]
        if contacts:
            await conn.execute("INSERT INTO contacts (object_id, name, phone, role, call_order)"
                               " SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::int[])",
                               *[[c_[i] for c_ in contacts] for i in range(5)])
        entries = [audit.Entry(actor, "object.imported", "object", str(oid), {
            "line": r.line, "name": r.name, "address": r.address, "latitude": r.latitude, "longitude": r.longitude,
            "account": r.account, "account_id": aid, "prefix": r.prefix, "protocol": r.protocol,
            "encrypted": r.aes_key is not None, "supervision_interval": r.supervision_interval,
            "zones": len(r.zones), "contacts": len(r.contacts)}) for oid, aid, r in zip(oids, aids, rows, strict=True)]
        entries.append(audit.Entry(actor, "import.objects", "import", "", {"source": source, "objects": n}))
        await audit.append(conn, entries)
        await conn.execute("SELECT pg_notify($1, $2)", account.CHANNEL_ACCOUNTS, "import")
        if progress:
            progress("done", n, n)
    return Result(n, [], data_rows)
