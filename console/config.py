"""Configuration: `$KUZET_HOME`, the database, and the receivers, from TOML and the environment."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(slots=True)
class Dc09Config:
    host: str = "127.0.0.1"
    port: int = 7000
    tcp: bool = True
    udp: bool = True
    window: tuple[int, int] = (40, 20)  # accepted timestamp skew: seconds in the past, in the future
    idle_timeout: float = 600.0  # a panel connection silent this long is closed
    unfinished_timeout: float = 10.0  # a half frame left hanging this long is recorded and the connection closed


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

    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"


def load(path: str | Path | None = None) -> Settings:
    """Settings from a TOML file (see README, "Configuration"); the environment wins for the database."""
    s = Settings()
    if path is None:
        return s
    data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    if "home" in data:
        s.home = Path(data["home"]).resolve()
    db = data.get("database", {})
    if db.get("url") and not os.environ.get("KUZET_DATABASE_URL"):
        s.database_url = db["url"]
    if db.get("app_url") and not os.environ.get("KUZET_APP_DATABASE_URL"):
        s.app_database_url = db["app_url"]
    web = data.get("web", {})
    s.web_host = web.get("host", s.web_host)
    s.web_port = int(web.get("port", s.web_port))
    s.trusted_proxies = [str(p) for p in web.get("trusted_proxies", s.trusted_proxies)]
    s.tls_cert = web.get("tls_cert", s.tls_cert)
    s.tls_key = web.get("tls_key", s.tls_key)
    s.body_limit = int(web.get("body_limit", s.body_limit))
    s.map_tiles = str(web.get("map_tiles", s.map_tiles))
    s.map_url = str(web.get("map_url", s.map_url))
    s.timezone = data.get("timezone", s.timezone)
    if "shifts" in data:
        from console.shiftstats import parse_shifts  # checked at start-up, not at the first report

        s.shifts = tuple(str(x) for x in data["shifts"])
        parse_shifts(s.shifts)
    if s.map_tiles and not (s.map_tiles.startswith(("https://", "http://", "/"))
                            and all(k in s.map_tiles for k in ("{z}", "{x}", "{y}"))):
        raise ValueError("web.map_tiles: a URL with {z}, {x} and {y}, e.g. https://tiles.example/{z}/{x}/{y}.png")
    s.dedup_window = float(data.get("dedup_window", s.dedup_window))
    recv = data.get("receivers", {})
    if "dc09" in recv:
        s.dc09 = []
        for r in recv["dc09"]:
            w = r.get("window", [40, 20])
            s.dc09.append(Dc09Config(
                host=r.get("host", "127.0.0.1"), port=int(r.get("port", 7000)),
                tcp=bool(r.get("tcp", True)), udp=bool(r.get("udp", True)),
                window=(int(w[0]), int(w[1])), idle_timeout=float(r.get("idle_timeout", 600.0)),
                unfinished_timeout=float(r.get("unfinished_timeout", 10.0)),
            ))
    s.compliance = dict(data.get("compliance", {}))
    s.serial = list(recv.get("serial", []))
    s.modbus = list(recv.get("modbus", []))
    return s
