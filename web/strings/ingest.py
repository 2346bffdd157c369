"""Health strip: a receiver whose database is failing, and peers cut off for sending garbage."""

from __future__ import annotations

STRINGS: dict[str, dict[str, str]] = {
    "receivers.degraded": {"kk": "ақаулы: дерекқор жазбайды", "ru": "сбой: база не пишет",
                           "en": "degraded: database failing"},
    "receivers.cut_off": {"kk": "бұғатталған мекенжай", "ru": "адресов отключено", "en": "peers cut off"},
}
