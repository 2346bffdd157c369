"""Contact ID / SIA event-code tables: completeness against the public code lists (tests/data), names, classes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from console.eventcodes import CodeInfo, classify, describe, is_known, lookup, sia_address
from console.eventcodes import cid as cid_table
from console.eventcodes import sia as sia_table

# The public SIA code tables (Contact ID per SIA DC-05, SIA per DC-03), copied with their sources.
CODES = json.loads((Path(__file__).parent / "data" / "event_codes.json").read_text(encoding="utf-8"))
KLASSES = {"alarm", "panic", "fire", "trouble", "tamper", "supervisory", "opening", "closing", "test", "restore", "other"}
CYRILLIC = re.compile(r"[А-Яа-яЁёӘәҒғҚқҢңӨөҰұҮүҺһІі]")
KAZAKH_LETTERS = re.compile(r"[ӘәҒғҚқҢңӨөҰұҮүҺһІі]")

CID_CODES = [row[0] for row in cid_table.ROWS]
SIA_CODES = [row[0] for row in sia_table.ROWS]


def _all_infos() -> list[CodeInfo]:
    infos = [classify("sia", code) for code in SIA_CODES]
    infos += [classify("cid", code, q) for code in CID_CODES for q in ("1", "3", "6")]
    return infos


# ---------------------------------------------------------------- completeness


def test_sia_numbers_are_users_and_areas_as_the_code_table_says() -> None:
    users = {r["code"] for r in CODES["sia"] if r["address"] == "User"}
    areas = {r["code"] for r in CODES["sia"] if r["address"] in ("Area", "Area number")}
    assert users and areas
    assert {c for c in SIA_CODES if sia_address(c) == "user"} == users
    assert {c for c in SIA_CODES if sia_address(c) == "area"} == areas


def test_every_dc05_code_is_in_the_cid_table() -> None:
    appendix = [row["code"] for row in CODES["cid"]]
    assert len(appendix) == 327
    assert set(appendix) == set(CID_CODES)
    assert len(CID_CODES) == len(set(CID_CODES))
    assert all(is_known("cid", code) for code in appendix)


def test_every_dc03_code_is_in_the_sia_table() -> None:
    appendix = [row["code"] for row in CODES["sia"]]
    assert len(appendix) == 325
    assert set(appendix) == set(SIA_CODES)
    assert len(SIA_CODES) == len(set(SIA_CODES))
    assert all(is_known("sia", code) for code in appendix)


# ---------------------------------------------------------------- names


def test_names_are_complete_and_translated() -> None:
    problems = []
    for info in _all_infos():
        where = f"{info.kind} {info.code} ({info.klass})"
        en, ru, kk = (info.name.get(lang, "") for lang in ("en", "ru", "kk"))
        if set(info.name) != {"kk", "ru", "en"} or not (en.strip() and ru.strip() and kk.strip()):
            problems.append(f"{where}: missing name {info.name}")
        elif not (CYRILLIC.search(ru) and CYRILLIC.search(kk)):
            problems.append(f"{where}: ru/kk name not in Cyrillic {info.name}")
        elif len({en, ru, kk}) != 3:
            problems.append(f"{where}: a name is copied between languages {info.name}")
        elif any("TODO" in text.upper() or "not in siadc09" in text for text in (en, ru, kk)):
            problems.append(f"{where}: placeholder text {info.name}")
    assert problems == []


def test_kazakh_names_use_kazakh_letters() -> None:
    kk_names = [row[6] for row in cid_table.ROWS] + [row[6] for row in sia_table.ROWS]
    with_kazakh = [name for name in kk_names if KAZAKH_LETTERS.search(name)]
    # Loan-word-only names ("Реле", "Принтер") are fine, but nearly every name has ә ғ қ ң ө ұ ү һ і.
    assert len(with_kazakh) >= 0.95 * len(kk_names)


def test_cid_pairs_have_both_wordings() -> None:
    for code, _k1, k3, _prio, _en, _ru, _kk, en3, ru3, kk3 in cid_table.ROWS:
        assert bool(en3) == bool(ru3) == bool(kk3), code
        if k3 != "restore":
            assert en3, code
    assert lookup("cid", "466", "1").name["en"] == "Service On Premises"  # type: ignore[union-attr]
    assert lookup("cid", "466", "3").name["en"] == "Service Off Premises"  # type: ignore[union-attr]
    aes_on = lookup("cid", "345", "3")
    assert aes_on is not None and aes_on.is_restore and aes_on.name["en"] == "AES Encryption has been enabled"


# ---------------------------------------------------------------- table consistency


def test_classes_priorities_and_restore_links_are_consistent() -> None:
    for info in _all_infos():
        assert info.klass in KLASSES
        assert 1 <= info.priority <= 5
        assert info.is_restore == (info.klass == "restore")
        if info.is_restore:
            assert not info.opens_alarm and info.priority >= 4
        if info.kind == "cid":
            assert info.restores == ()
    for code in SIA_CODES:
        info = classify("sia", code)
        assert bool(info.restores) == info.is_restore, code
        for target in info.restores:
            restored = lookup("sia", target)
            assert restored is not None and not restored.is_restore, (code, target)


def test_opens_alarm_by_class() -> None:
    for info in _all_infos():
        if info.kind == "cid" and info is lookup("cid", info.code, "6"):
            assert not info.opens_alarm, info  # a status report never opens an alarm
        elif info.klass in {"alarm", "panic", "fire", "tamper", "supervisory", "trouble"}:
            assert info.opens_alarm, info
        elif info.klass in {"opening", "closing", "test", "restore"}:
            assert not info.opens_alarm, info
        else:  # "other": only what we cannot interpret (P3) needs an operator
            assert info.opens_alarm == (info.priority <= 3), info


# ---------------------------------------------------------------- Contact ID spot checks


def test_cid_130_burglary_and_its_restore() -> None:
    new = classify("cid", "130", "1")
    assert (new.klass, new.priority, new.opens_alarm, new.is_restore) == ("alarm", 2, True, False)
    restore = classify("cid", "130", "3")
    assert (restore.klass, restore.opens_alarm, restore.is_restore, restore.restores) == ("restore", False, True, ())
    assert restore.priority > new.priority
    assert classify("cid", "130") == new  # no qualifier: a new event


def test_cid_401_opening_and_closing() -> None:
    opening = classify("cid", "401", "1")
    closing = classify("cid", "401", "3")
    assert (opening.klass, opening.opens_alarm, opening.is_restore, opening.priority) == ("opening", False, False, 4)
    assert (closing.klass, closing.opens_alarm, closing.is_restore, closing.priority) == ("closing", False, False, 4)
    assert closing.name["ru"] == "Взятие под охрану пользователем"
    assert closing.name["kk"] == "Пайдаланушы күзетке алды"
    assert opening.name["kk"] == "Пайдаланушы күзеттен алды"


def test_cid_602_periodic_test_does_not_open_an_alarm() -> None:
    info = classify("cid", "602", "1")
    assert (info.klass, info.opens_alarm, info.priority) == ("test", False, 5)


def test_cid_fire_panic_medical_tamper_trouble() -> None:
    fire = classify("cid", "110", "1")
    assert (fire.klass, fire.priority, fire.opens_alarm) == ("fire", 1, True)
    assert all(classify("cid", str(c)).klass == "fire" for c in range(110, 119))
    assert all(classify("cid", c).klass == "panic" for c in ("120", "121", "122", "123", "129"))
    medical = classify("cid", "100")
    assert (medical.klass, medical.priority) == ("alarm", 1)
    for code in ("137", "144", "145", "316", "317", "341", "383"):
        assert classify("cid", code).klass == "tamper", code
    assert classify("cid", "200").klass == "supervisory"
    trouble = classify("cid", "301")
    assert (trouble.klass, trouble.priority, trouble.opens_alarm) == ("trouble", 3, True)
    bypass = classify("cid", "570")
    assert (bypass.klass, bypass.priority, bypass.opens_alarm) == ("other", 4, False)
    assert classify("cid", "570", "3").is_restore


def test_cid_status_report_keeps_class_but_does_not_open() -> None:
    status = classify("cid", "110", "6")
    assert (status.klass, status.priority, status.opens_alarm, status.is_restore) == ("fire", 1, False, False)


def test_cid_automation_qualifier_letters() -> None:
    assert lookup("cid", "130", "E") == lookup("cid", "130", "1")
    assert lookup("cid", "130", "R") == lookup("cid", "130", "3")
    assert lookup("cid", "130", "P") == lookup("cid", "130", "6")
    assert classify("cid", "130", "9").klass == "alarm"  # unreadable qualifier: treated as a new event


# ---------------------------------------------------------------- SIA spot checks


@pytest.mark.parametrize(
    ("code", "klass", "opens"),
    [
        ("BA", "alarm", True),
        ("FA", "fire", True),
        ("PA", "panic", True),
        ("HA", "panic", True),
        ("MA", "alarm", True),
        ("TA", "tamper", True),
        ("YT", "trouble", True),
        ("BS", "supervisory", True),
        ("OP", "opening", False),
        ("OA", "opening", False),
        ("OR", "opening", False),
        ("CL", "closing", False),
        ("CA", "closing", False),
        ("NL", "closing", False),
        ("RP", "test", False),
        ("RX", "test", False),
        ("TX", "test", False),
        ("BB", "other", False),
        ("BR", "restore", False),
    ],
)
def test_sia_classes(code: str, klass: str, opens: bool) -> None:
    info = classify("sia", code)
    assert (info.kind, info.code, info.klass, info.opens_alarm) == ("sia", code, klass, opens)


def test_sia_priorities() -> None:
    assert classify("sia", "FA").priority == 1
    assert classify("sia", "PA").priority == 1
    assert classify("sia", "HA").priority == 1
    assert classify("sia", "MA").priority == 1
    assert classify("sia", "BA").priority == 2
    assert classify("sia", "TA").priority == 2
    assert classify("sia", "YT").priority == 3
    assert classify("sia", "OP").priority == 4
    assert classify("sia", "RP").priority == 5


@pytest.mark.parametrize(
    ("restore", "restored"),
    [("BR", "BA"), ("BH", "BA"), ("FR", "FA"), ("FH", "FA"), ("YR", "YT"), ("AR", "AT"), ("TR", "TA"), ("PH", "PA")],
)
def test_sia_restores(restore: str, restored: str) -> None:
    info = classify("sia", restore)
    assert info.is_restore and info.klass == "restore" and not info.opens_alarm
    assert restored in info.restores


def test_sia_codes_are_matched_exactly() -> None:
    assert lookup("sia", "ba") is None  # lower-case pairs are DC-03 modifiers, not events
    assert not is_known("sia", "ti")
    assert not is_known("sia", "pi")
    assert is_known("SIA", "BA") and is_known("SIA-DCS", "BA") and is_known("ADM-CID", "130")


# ---------------------------------------------------------------- unknown codes, describe()


def test_unknown_codes() -> None:
    assert lookup("sia", "QQ") is None and not is_known("sia", "QQ")
    assert lookup("cid", "999") is None and not is_known("cid", "999")
    assert not is_known("xyz", "BA") and lookup("xyz", "BA") is None
    for kind, code in (("sia", "QQ"), ("cid", "999")):
        info = classify(kind, code, "1")
        assert (info.kind, info.code, info.klass, info.priority, info.opens_alarm) == (kind, code, "other", 3, True)
        assert not info.is_restore and info.restores == ()
        assert info.name["en"] == f"Unknown code {code}"
        assert code in info.name["ru"] and code in info.name["kk"]
        assert CYRILLIC.search(info.name["kk"])


def test_describe_language_fallback() -> None:
    assert describe("sia", "BA") == "Burglary Alarm"
    assert describe("sia", "BA", lang="ru") == "Тревога проникновения"
    assert describe("sia", "BA", lang="kk") == "Басып кіру дабылы"
    assert describe("sia", "BA", lang="de") == "Burglary Alarm"  # unknown language -> English
    assert describe("cid", "401", "3", lang="kk") == "Пайдаланушы күзетке алды"
    assert describe("cid", "130", "3", lang="en") == "Burglary — restore"
    assert describe("sia", "QQ", lang="ru") == "QQ"  # unknown code -> the code itself
    assert describe("cid", "999", "1") == "999"
