"""Compliance parameters. The order's own figures (one year of experience, two groups, guards at
least 19, the one- and three-year windows of chapters 1-2) are constants in the modules that use
them, with their source. Everything whose legal basis is NOT verified (see README "Compliance")
is a setting here, read from the `[compliance]` table of the configuration file."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass(slots=True)
class ComplianceSettings:
    organization: str = ""  # the licensee's name, shown in reports
    organization_bin: str = ""  # its BIN: when set, documents proving ownership must be held by it
    national_company: bool = False  # chapter 4: a national company's security organization
    timezone: str = "Asia/Almaty"  # days of the period are the post's days (taken from the main settings)
    home: str = ""  # the data directory (taken from the main settings): audit anchors, documents
    expiry_warn_days: int = 30  # warn this many days before a document or a result expires
    upload_max_bytes: int = 20 * 1024 * 1024  # a scanned document's size limit
    # Row 1: the order proves experience by the licence alone; counting it from the licence's issue
    # date is an inference, so the number of days is a setting (365 = "at least one year").
    experience_days: int = 365
    # Row 3, the console: a supervised panel is overdue after interval x grace without a signal.
    supervision_grace: float = 1.5
    # Row 3, the server: the last verified backup must be at most this old.
    backup_max_age_hours: int = 24
    # Row 5: alarms of this priority or more urgent need a response (1 fire/panic, 2 burglary/tamper).
    response_priority_max: int = 2
    # Row 5: an alarm still unacknowledged this many minutes after it opened counts as unanswered.
    ack_overdue_minutes: int = 10
    # Row 5: minimum share of the period during which at least two groups were on duty.
    duty_coverage_min_pct: float = 99.0
    # Chapters 1-2: an external result (register extract, certificate) is taken as current this long.
    screening_max_age_days: int = 365
    # Chapters 1-2: a staff member with no personnel record may not be put on a duty shift.
    shift_requires_personnel: bool = True
    # Chapters 1-2: the training certificate's validity when it carries no end date (None: no limit).
    training_validity_years: int | None = None

    @classmethod
    def load(cls, raw: Any = None) -> ComplianceSettings:
        """From a ComplianceSettings, a console Settings (its `compliance` table), a dict, or None."""
        if isinstance(raw, ComplianceSettings):
            return raw
        if raw is None:
            return cls()
        table = dict(raw if isinstance(raw, dict) else getattr(raw, "compliance", None) or {})
        if not isinstance(raw, dict) and getattr(raw, "timezone", None):
            table.setdefault("timezone", raw.timezone)
        if not isinstance(raw, dict) and getattr(raw, "home", None):
            table.setdefault("home", str(raw.home))
        known = {f.name: f for f in fields(cls)}
        unknown = set(table) - set(known)
        if unknown:
            raise ValueError(f"[compliance]: unknown setting(s) {', '.join(sorted(unknown))}")
        s = cls()
        for name, value in table.items():
            default = getattr(s, name)
            if isinstance(default, bool):
                value = bool(value)
            elif isinstance(default, int) and value is not None:
                value = int(value)
            elif isinstance(default, float):
                value = float(value)
            setattr(s, name, value)
        return s
