"""Contact ID and SIA event codes: class, priority, restore links and kk/ru/en names.

The tables (``cid.ROWS``, ``sia.ROWS``) were generated once from the public code lists of
SIA DC-05 (Contact ID) and SIA DC-03 and reviewed by hand; this module turns them into prebuilt :class:`CodeInfo`
objects held in dicts, so :func:`lookup`, :func:`is_known` and :func:`classify` are O(1) and
allocate nothing for known codes (the receivers call :func:`is_known` on every frame).

Classes and what they mean for the operator
-------------------------------------------
``opens_alarm`` is decided by class:

* ``alarm``, ``panic``, ``fire``, ``tamper``, ``supervisory`` -- open an alarm;
* ``trouble`` -- opens an alarm too: AC loss, a dead battery, a lost communicator or a failed
  arming schedule leave the object unprotected, and somebody has to call the keyholder or send
  a technician;
* ``other`` opens an alarm only at priority 3 or better: that is the class of events whose
  meaning Kuzet cannot interpret (unknown codes, Contact ID "user assigned" 750-789 and legacy
  703, SIA ``UX``/``YN``/``YO``), so an operator must look at them;
* ``opening``, ``closing``, ``test``, ``restore`` and the remaining ``other`` events are logged
  against the object but do not open an alarm;
* a Contact ID status report (qualifier 6, "condition still present") never opens an alarm.

Priorities follow Kuzet's triage of the Contact ID event groups, applied by class
rather than by code range: P1 fire, panic/duress/hold-up, medical; P2 burglary, tamper,
24-hour, supervisory; P3 trouble; P4 opening/closing, bypass and access events; P5 tests and
housekeeping. A restore is P4 when the condition it restores was P1/P2 and P5 otherwise.

Contact ID qualifiers
---------------------
``1`` (or ``E``, or empty) is a new event -- an opening for the open/close codes; ``3`` (or
``R``) is a restore -- a closing for the open/close codes, and the second wording for the
start/end pairs the standard defines (466 service on/off premises, 901 download start/end ...);
``6`` (or ``P``) is a status report: the class and priority of the code, never opening an
alarm. ``E/R/P`` are the letters the Sur-Gard and Ademco 685 automation outputs use instead of
``1/3/6``. Any other qualifier is read as a new event, so that an operator sees it.

Deliberate deviations from the code ranges of DC-05 and the class heuristic of Appendix B:
tamper codes in the 300s (316, 317, 341, 383) and 461 (wrong-code entry, i.e. code guessing)
are ``tamper``; 374 exit-error alarm, 423 forced door and 643 restricted door opened are
``alarm``; 404/453/454/455 (late / failed to open or close, auto-arm failed), the access-point
and fibre faults, 414/415 shutdown commands and the 900s failures/troubles are ``trouble``;
646 additional help needed is ``panic``; 704 installer test is ``test``. In SIA, ``KA`` (heat)
and ``SA`` (sprinkler) are ``fire``; ``HS``/``PS`` are supervisory and ``HB``/``PB``
bypasses; ``OH``/``OL``/``OR`` are openings; ``*U`` unbypass codes are restores of ``*B``;
``BC``/``FC``/``OC`` cancels and ``RC``/``RO`` relay events are ``other``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, get_args

from console.eventcodes import cid, sia

__all__ = ["CodeInfo", "Klass", "classify", "describe", "is_known", "lookup", "sia_address"]

Klass = Literal[
    "alarm", "panic", "fire", "trouble", "tamper", "supervisory", "opening", "closing", "test", "restore", "other"
]

LANGS: Final = ("kk", "ru", "en")
OPENS_ALARM_CLASSES: Final[frozenset[str]] = frozenset(
    {"alarm", "panic", "fire", "tamper", "trouble", "supervisory"}
)
UNKNOWN_PRIORITY: Final = 3


@dataclass(frozen=True, slots=True)
class CodeInfo:
    """What one received event code means. Instances are shared: treat ``name`` as read-only."""

    kind: str  # "sia" | "cid"
    code: str  # "BA" / "130"
    klass: Klass  # the class of this code as received (for CID it depends on the qualifier)
    priority: int  # 1 (most urgent) .. 5
    opens_alarm: bool  # an operator must act on it
    is_restore: bool  # it restores an earlier condition
    restores: tuple[str, ...]  # SIA: the codes it restores; CID: () (a restore is the same code)
    name: dict[str, str]  # {"kk": ..., "ru": ..., "en": ...}


_KLASSES: Final[dict[str, Klass]] = {k: k for k in get_args(Klass)}
_KINDS: Final[dict[str, str]] = {"sia": "sia", "sia-dcs": "sia", "cid": "cid", "adm-cid": "cid"}
_QUALIFIERS: Final[dict[str, str]] = {"": "1", "1": "1", "E": "1", "3": "3", "R": "3", "6": "6", "P": "6"}


def _klass(value: str) -> Klass:
    try:
        return _KLASSES[value]
    except KeyError:
        raise ValueError(f"unknown event class {value!r} in the code tables") from None


def _opens(klass: str, priority: int) -> bool:
    return klass in OPENS_ALARM_CLASSES or (klass == "other" and priority <= UNKNOWN_PRIORITY)


def _restore_priority(priority: int) -> int:
    return 4 if priority <= 2 else 5


def _names(en: str, ru: str, kk: str) -> dict[str, str]:
    return {"kk": kk, "ru": ru, "en": en}


def _build_cid() -> dict[tuple[str, str], CodeInfo]:
    table: dict[tuple[str, str], CodeInfo] = {}
    for code, k1, k3, prio, en, ru, kk, en3, ru3, kk3 in cid.ROWS:
        new = _klass(k1)
        table[(code, "1")] = CodeInfo("cid", code, new, prio, _opens(new, prio), False, (), _names(en, ru, kk))
        second = _klass(k3)
        if second == "restore":
            names3 = (
                _names(en3, ru3, kk3)
                if en3
                else _names(f"{en} — restore", f"{ru} — восстановление", f"{kk} — қалпына келді")
            )
            table[(code, "3")] = CodeInfo("cid", code, "restore", _restore_priority(prio), False, True, (), names3)
        else:
            table[(code, "3")] = CodeInfo(
                "cid", code, second, prio, _opens(second, prio), False, (), _names(en3, ru3, kk3)
            )
        table[(code, "6")] = CodeInfo(
            "cid",
            code,
            new,
            prio,
            False,
            False,
            (),
            _names(f"{en} — still present", f"{ru} — всё ещё сохраняется", f"{kk} — әлі де сақталуда"),
        )
    return table


def _build_sia() -> dict[str, CodeInfo]:
    table: dict[str, CodeInfo] = {}
    for code, k, prio, restores, en, ru, kk in sia.ROWS:
        klass = _klass(k)
        is_restore = klass == "restore"
        opens = _opens(klass, prio)
        table[code] = CodeInfo("sia", code, klass, prio, opens, is_restore, restores, _names(en, ru, kk))
    return table


_CID: Final[dict[tuple[str, str], CodeInfo]] = _build_cid()
_SIA: Final[dict[str, CodeInfo]] = _build_sia()
_CID_CODES: Final[frozenset[str]] = frozenset(row[0] for row in cid.ROWS)


def lookup(kind: str, code: str, qualifier: str = "") -> CodeInfo | None:
    """The meaning of ``code`` (``kind`` "sia" or "cid"), or None if it is not in the tables.

    Codes are matched exactly: SIA codes are two upper-case letters (lower-case pairs are DC-03
    modifiers, not events), Contact ID codes three digits. ``qualifier`` only matters for CID.
    """
    k = _KINDS.get(kind.lower())
    if k == "sia":
        return _SIA.get(code)
    if k == "cid":
        return _CID.get((code, _QUALIFIERS.get(qualifier, "1")))
    return None


Address = Literal["zone", "user", "area"]


def sia_address(code: str) -> Address:
    """What the number after SIA `code` is: a zone (most codes), a user (openings, closings,
    cancels, access) or an area (area arming), per the SIA DC-03 event-code table."""
    if code in sia.USER_ADDRESS:
        return "user"
    if code in sia.AREA_ADDRESS:
        return "area"
    return "zone"


def is_known(kind: str, code: str) -> bool:
    """True if ``code`` is in the table for ``kind`` (the DC-09 codec answers DUH otherwise)."""
    k = _KINDS.get(kind.lower())
    if k == "sia":
        return code in _SIA
    if k == "cid":
        return code in _CID_CODES
    return False


def classify(kind: str, code: str, qualifier: str = "") -> CodeInfo:
    """Like :func:`lookup`, but never None: an unknown code is class "other", priority 3, and
    opens an alarm, because an operator must see what Kuzet cannot read."""
    info = lookup(kind, code, qualifier)
    if info is not None:
        return info
    k = _KINDS.get(kind.lower(), kind)
    return CodeInfo(
        k,
        code,
        "other",
        UNKNOWN_PRIORITY,
        True,
        False,
        (),
        _names(f"Unknown code {code}", f"Неизвестный код {code}", f"Белгісіз код {code}"),
    )


def describe(kind: str, code: str, qualifier: str = "", lang: str = "en") -> str:
    """The name of the event in ``lang``, falling back to English, then to the code itself."""
    info = lookup(kind, code, qualifier)
    if info is None:
        return code
    return info.name.get(lang) or info.name.get("en") or code
