"""The evidence bundle on its own: signed, verifiable file by file, and a report whose Kazakh text
can be extracted and whose pages are drawn (not blank)."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pypdf
import pypdfium2
import pytest

from compliance import bundle, orgkey, report

T0 = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)
KAZAKH = "Біліктілік талаптарына сәйкестік туралы есеп"

RESULTS = [
    {"row": "3.1", "status": "met",
     "title": {"kk": "Лицензия және кемінде бір жыл тәжірибе", "ru": "Лицензия и опыт не менее года",
               "en": "Licence and at least one year of experience"},
     "explanation": {"kk": "Лицензия жарамды, қызмет тәжірибесі 3 жыл.", "ru": "Лицензия действует, опыт 3 года.",
                     "en": "The licence is valid; 3 years of experience."},
     "evidence": [{"kind": "document", "label": {"kk": "Лицензия", "ru": "Лицензия", "en": "Licence"},
                   "value": "№ 21000123"}]},
    {"row": "3.5", "status": "not-met",
     "title": {"kk": "Кемінде екі жедел топ", "ru": "Не менее двух мобильных групп", "en": "At least two mobile groups"},
     "explanation": {"kk": "Кезекшілікте бір ғана топ болды.", "ru": "На дежурстве была одна группа.",
                     "en": "Only one group was on duty."},
     "evidence": []},
]


def report_data() -> report.ReportData:
    return report.ReportData(
        "ТОО «Күзет-Сервис»", date(2026, 11, 1), date(2026, 11, 28), T0, RESULTS,
        signals_per_day=[(date(2026, 11, 1) + timedelta(days=i), 90 + 7 * i) for i in range(28)],
        coverage=[("ГБР-1", 100.0), ("ГБР-2", 62.5)], response_minutes=[4.5, 6, 7.2, 8, 9.5, 12],
        documents=[{"kind": "licence", "number": "21000123", "valid_until": "2031-01-01"}],
        audit={"ok": True, "entries": 42, "last_hash": "ab" * 32})


@pytest.fixture(scope="module")
def pdf() -> bytes:
    return report.render(report_data(), "kk")


@pytest.fixture
def signed(tmp_path: Path, pdf: bytes) -> tuple[Path, orgkey.Ed25519PrivateKey]:
    key = orgkey.load_or_create(tmp_path / "home")
    out = tmp_path / "bundle.zip"
    members = [("report.pdf", pdf), ("results.json", json.dumps(RESULTS).encode()),
               ("extracts/signals_per_panel_per_day.csv", b"day,account,signals\r\n2026-11-01,1001,12\r\n"),
               ("documents/1-licence.pdf", b"%PDF-1.4 licence scan")]
    bundle.build(out, members, key, created_at=T0, meta={"period_from": "2026-11-01"})
    return out, key


def rewrite(src: Path, dst: Path, name: str, change: bytes | None) -> None:
    """Copy the ZIP with one member's content changed (a well-formed ZIP: CRCs updated) or dropped."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == name:
                if change is None:
                    continue
                data = change
            zout.writestr(info, data)


def test_report_holds_the_kazakh_text_and_draws_its_pages(pdf: bytes) -> None:
    text = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages)
    assert KAZAKH in text
    assert "Кемінде екі жедел топ" in text and "Орындалмады" in text  # the failed row and its status
    doc = pypdfium2.PdfDocument(pdf)
    try:
        assert len(doc) >= 2
        for page in doc:
            gray = page.render(scale=0.5).to_pil().convert("L")
            lo, hi = gray.getextrema()
            inked = sum(gray.histogram()[:200])
            assert hi - lo > 100 and inked > 500, "page renders blank"
    finally:
        doc.close()


def test_same_inputs_give_the_same_report(pdf: bytes) -> None:
    assert report.render(report_data(), "kk") == pdf


def test_report_speaks_each_language() -> None:
    for lang, words in (("ru", "Отчёт о соответствии"), ("en", "Report on compliance")):
        text = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(report.render(report_data(), lang))).pages)
        assert words in text


def test_a_fresh_bundle_verifies(signed: tuple[Path, orgkey.Ed25519PrivateKey]) -> None:
    path, key = signed
    v = bundle.verify(path, orgkey.load_public(orgkey.public_pem(key)))
    assert v.ok and v.problems == [] and v.files_checked == 5 and v.origin_checked
    assert bundle.verify(path).ok  # against the key inside: integrity, not origin


@pytest.mark.parametrize("name", ["report.pdf", "results.json", "extracts/signals_per_panel_per_day.csv",
                                  "documents/1-licence.pdf", "manifest.json", "manifest.sig",
                                  "organization-key.pub"])
def test_one_changed_byte_names_the_file(signed: tuple[Path, orgkey.Ed25519PrivateKey], tmp_path: Path,
                                         name: str) -> None:
    path, key = signed
    with zipfile.ZipFile(path) as zf:
        data = bytearray(zf.read(name))
    i = len(data) // 2
    data[i] = data[i] ^ 0x01
    bad = tmp_path / "tampered.zip"
    rewrite(path, bad, name, bytes(data))
    v = bundle.verify(bad, orgkey.load_public(orgkey.public_pem(key)))
    assert not v.ok
    assert [p.file for p in v.problems] == [name], v.problems


@pytest.mark.parametrize("at", range(0, 120, 7))
def test_any_changed_byte_of_the_public_key_is_named(signed: tuple[Path, orgkey.Ed25519PrivateKey],
                                                     tmp_path: Path, at: int) -> None:
    """Some changes leave a valid PEM of another key, others no PEM at all: both name the file."""
    path, _ = signed
    with zipfile.ZipFile(path) as zf:
        data = bytearray(zf.read(bundle.PUBLIC_KEY))
    data[at % len(data)] ^= 0x01
    bad = tmp_path / "tampered.zip"
    rewrite(path, bad, bundle.PUBLIC_KEY, bytes(data))
    assert [p.file for p in bundle.verify(bad).problems] == [bundle.PUBLIC_KEY]


def test_dropped_or_added_files_are_named(signed: tuple[Path, orgkey.Ed25519PrivateKey], tmp_path: Path) -> None:
    path, _ = signed
    dropped = tmp_path / "dropped.zip"
    rewrite(path, dropped, "results.json", None)
    assert [str(p) for p in bundle.verify(dropped).problems] == ["results.json: missing from the bundle"]
    added = tmp_path / "added.zip"
    rewrite(path, added, "", None)
    with zipfile.ZipFile(added, "a") as zf:
        zf.writestr("documents/forged.pdf", b"%PDF-1.4 forged")
    assert [p.file for p in bundle.verify(added).problems] == ["documents/forged.pdf"]


def test_another_organizations_key_is_refused(signed: tuple[Path, orgkey.Ed25519PrivateKey], tmp_path: Path) -> None:
    path, _ = signed
    other = orgkey.load_or_create(tmp_path / "other")
    v = bundle.verify(path, other.public_key())
    assert not v.ok and v.problems[0].file == "manifest.sig" and "another key" in v.problems[0].message


def test_the_key_is_made_once_and_kept_private(tmp_path: Path) -> None:
    home = tmp_path / "home"
    key = orgkey.load_or_create(home)
    again = orgkey.load_or_create(home)
    assert orgkey.fingerprint(key) == orgkey.fingerprint(again)
    path = orgkey.key_path(home)
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
    assert orgkey.fingerprint(orgkey.load_public(orgkey.fingerprint(key).encode())) == orgkey.fingerprint(key)
