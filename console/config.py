"""Configuration: `$KUZET_HOME`, the database, the web and the receivers, from TOML and the environment.

The TOML file is checked against `FileConfig` (pydantic) before anything starts: a missing file, bad
TOML, a value of the wrong type or a key Kuzet does not know (a typo such as `[wbe]` or `prot = 7000`
would otherwise leave the defaults in force, silently) is a `ConfigError` whose text is one line
naming the file, the key and the problem.

Adding a setting: a field on the section's model below (every section forbids unknown keys), with
its default, and where the runtime reads it. A new section (`[dispatch]`, `[compliance]` ...) is a
new `_Section` subclass, a field of that type on `FileConfig` and one on `Settings` (the parsed
section object itself: `settings.dispatch.arrival_timeout`), copied over in `load`.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class ConfigError(ValueError):
    """A configuration Kuzet cannot run with; the message is one line for the user."""


class _Section(BaseModel):
    # strict: TOML has real types, so "7000" for a port is a mistake worth saying; unknown keys are
    # refused so that a misspelt key does not quietly leave the default in force
    model_config = ConfigDict(extra="forbid", strict=True)


class Dc09Config(_Section):
    """One `[[receivers.dc09]]` table."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 7000
    tcp: bool = True
    udp: bool = True
    # accepted timestamp skew: seconds in the past, in the future
    window: Annotated[tuple[int, int], Field(strict=False)] = (40, 20)
    idle_timeout: Annotated[float, Field(gt=0)] = 600.0  # a panel connection silent this long is closed
    unfinished_timeout: Annotated[float, Field(gt=0)] = 10.0  # a half frame left hanging this long is recorded and the connection closed
    # Limits for a port facing the internet (receivers/guard.py, docs/receivers.md)
    max_frame: Annotated[int, Field(ge=64, le=1 << 20)] = 4096  # bytes LF..CR; longer is refused before it is whole
    max_connections: Annotated[int, Field(gt=0)] = 10_000  # TCP connections in all
    max_connections_per_peer: Annotated[int, Field(gt=0)] = 256  # from one address
    slow_after: Annotated[int, Field(gt=0)] = 20  # rejected frames from one address in penalty_window: slowed
    block_after: Annotated[int, Field(gt=0)] = 200  # ... then cut off for block_seconds
    penalty_window: Annotated[float, Field(gt=0, strict=False)] = 10.0
    slow_delay: Annotated[float, Field(ge=0, strict=False)] = 0.5
    block_seconds: Annotated[float, Field(ge=0, strict=False)] = 60.0


class DatabaseSection(_Section):
    url: str | None = None  # the schema owner's (migrations); KUZET_DATABASE_URL wins
    app_url: str | None = None  # the runtime role's; KUZET_APP_DATABASE_URL wins


class WebSection(_Section):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8000
    trusted_proxies: list[str] = Field(default_factory=list)
    tls_cert: str | None = None
    tls_key: str | None = None
    body_limit: Annotated[int, Field(gt=0)] = 1 << 20
    map_tiles: str = ""
    map_url: str = ""  # the crews' phone view: a map link with "{lat}"/"{lon}"

    @field_validator("map_tiles")
    @classmethod
    def _tiles(cls, v: str) -> str:
        if v and not (v.startswith(("https://", "http://", "/")) and all(k in v for k in ("{z}", "{x}", "{y}"))):
            raise ValueError("a URL with {z}, {x} and {y}, e.g. https://tiles.example/{z}/{x}/{y}.png")
        return v


class ReceiversSection(_Section):
    dc09: list[Dc09Config] | None = None  # absent: one DC-09 receiver with the defaults
    # checked by the receivers' own configuration classes when the post starts (kuzet.runtime)
    serial: list[dict[str, Any]] = Field(default_factory=list)
    modbus: list[dict[str, Any]] = Field(default_factory=list)


class RejectedFramesSection(_Section):
    """`[rejected_frames]`: what is kept of refused frames (console/rejected.py)."""

    samples_per_minute: Annotated[int, Field(ge=0)] = 5  # whole frames per peer address and reason each minute
    max_rows: Annotated[int, Field(gt=0)] = 100_000
    max_age_days: Annotated[float, Field(gt=0, strict=False)] = 30.0


class FileConfig(_Section):
    """The whole TOML file (README, "Configuration")."""

    home: str | None = None
    timezone: str = "Asia/Almaty"
    dedup_window: Annotated[float, Field(gt=0)] = 120.0
    shifts: list[str] | None = None
    database: DatabaseSection = Field(default_factory=DatabaseSection)
    web: WebSection = Field(default_factory=WebSection)
    receivers: ReceiversSection = Field(default_factory=ReceiversSection)
    rejected_frames: RejectedFramesSection = Field(default_factory=RejectedFramesSection)
    # checked by compliance's own settings class when the post starts (kuzet.runtime.check_settings)
    compliance: dict[str, Any] = Field(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (e.g. Asia/Almaty)") from None
        return v

    @field_validator("shifts")
    @classmethod
    def _shifts(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            from console.shiftstats import parse_shifts  # checked at start-up, not at the first report

            try:
                parse_shifts(tuple(v))
            except ValueError as exc:
                raise ValueError(str(exc).removeprefix("shifts: ")) from None
        return v


@dataclass(slots=True)
class Settings:
    home: Path = field(default_factory=lambda: Path(os.environ.get("KUZET_HOME", "./var")).resolve())
    # An external PostgreSQL: `database_url` is the schema owner's (migrations), `app_database_url` the
    # runtime role's (everything else; see README "Security"). Neither: the embedded server.
    database_url: str | None = field(default_factory=lambda: os.environ.get("KUZET_DATABASE_URL") or None)
    app_database_url: str | None = field(default_factory=lambda: os.environ.get("KUZET_APP_DATABASE_URL") or None)
    web_host: str = "127.0.0.1"
    web_port: int = 8000
    # Addresses (or networks) of reverse proxies whose X-Forwarded-For/-Proto are believed; none by default.
    trusted_proxies: list[str] = field(default_factory=list)
    tls_cert: str | None = None  # PEM files: Kuzet serves HTTPS itself (and sends HSTS)
    tls_key: str | None = None
    body_limit: int = 1 << 20  # bytes of a request body, unless web.app.BODY_LIMITS says more for its path
    timezone: str = "Asia/Almaty"
    # a map link for the crews' phone view, "{lat}"/"{lon}" filled in; empty: only the phone's own
    # navigation app (a geo: link), so nothing points at an outside host unless the post chooses one
    map_url: str = ""
    dc09: list[Dc09Config] = field(default_factory=lambda: [Dc09Config()])
    serial: list[dict[str, Any]] = field(default_factory=list)  # raw tables, read by receivers.serial
    modbus: list[dict[str, Any]] = field(default_factory=list)  # raw tables, read by receivers.modbus
    dedup_window: float = 120.0  # seconds within which an identical message counts as a retry
    # shifts of the post, local times ("20:00-08:00" runs past midnight); used by the shift figures
    shifts: tuple[str, ...] = ("08:00-20:00", "20:00-08:00")
    # map tile server, e.g. "https://tiles.example/{z}/{x}/{y}.png"; empty: the offline vector map only
    map_tiles: str = ""
    compliance: dict[str, Any] = field(default_factory=dict)  # raw [compliance] table, read by compliance.settings
    config_file: Path | None = None  # where these settings came from, for messages
    # rejected frames kept for review ([rejected_frames] in TOML; see console/rejected.py)
    rejected_samples_per_minute: int = 5  # whole frames kept per peer address and reason each minute
    rejected_max_rows: int = 100_000
    rejected_max_age_days: float = 30.0

    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"


def _key(loc: tuple[int | str, ...]) -> str:
    """("receivers", "dc09", 0, "port") -> "receivers.dc09[0].port"."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _problem(err: dict[str, Any]) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required"
    msg = str(err["msg"])
    msg = msg.removeprefix("Value error, ")
    if kind.endswith("_type") or kind.endswith("_parsing"):
        msg += f", not {err['input']!r}"
    return msg[:1].lower() + msg[1:]


def parse(text: str, path: str | Path = "<config>") -> FileConfig:
    """Check a configuration file's text; `ConfigError` (one line) if it is not one Kuzet can run."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        return FileConfig.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ConfigError(f"{path}: {_key(first['loc'])}: {_problem(dict(first))}{more}") from None


def load(path: str | Path | None = None) -> Settings:
    """Settings from a TOML file (see README, "Configuration"); the environment wins for the database."""
    s = Settings()
    if path is None:
        return s
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such configuration file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read the configuration: {getattr(exc, 'strerror', None) or exc}") from None
    f = parse(text, p)
    s.config_file = p
    if f.home is not None:
        s.home = Path(f.home).resolve()
    if f.database.url and not os.environ.get("KUZET_DATABASE_URL"):
        s.database_url = f.database.url
    if f.database.app_url and not os.environ.get("KUZET_APP_DATABASE_URL"):
        s.app_database_url = f.database.app_url
    w = f.web
    s.web_host, s.web_port, s.trusted_proxies = w.host, w.port, list(w.trusted_proxies)
    s.tls_cert, s.tls_key, s.body_limit, s.map_tiles = w.tls_cert, w.tls_key, w.body_limit, w.map_tiles
    s.map_url = w.map_url
    s.timezone = f.timezone
    if f.shifts is not None:
        s.shifts = tuple(f.shifts)
    s.dedup_window = f.dedup_window
    if f.receivers.dc09 is not None:
        s.dc09 = list(f.receivers.dc09)
    s.serial = list(f.receivers.serial)
    s.modbus = list(f.receivers.modbus)
    s.compliance = dict(f.compliance)
    r = f.rejected_frames
    s.rejected_samples_per_minute, s.rejected_max_rows, s.rejected_max_age_days = (
        r.samples_per_minute, r.max_rows, r.max_age_days)
    return s
