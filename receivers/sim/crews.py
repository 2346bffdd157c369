"""`kuzet sim crews`: a simulated response group crew, using exactly the API the crew's phone uses.

It logs in as a crew user, polls `GET /api/crew/assignment`, and answers an assignment as a crew
in a car would: accepts after a few seconds, drives toward the object (posting its moving position
to `POST /api/crew/position`), reports on site, and finishes with an outcome and a short report.
It never dispatches: operators do that on the board.

It stands aside while a person has the group's phone view open (`phones` > 0 in the answer: a
/ws/crew connection of the group), so someone trying the phone view handles the assignment
themselves; it takes over again once that page is closed.

Standard library only (urllib): the simulator runs in the demo where the test extras are absent.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import math
import os
import random
import signal
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

OUTCOMES = [("false-alarm", "Ложная тревога: окна и двери закрыты, следов проникновения нет."),
            ("false-alarm", "Объект осмотрен, всё в порядке; сработал датчик в холле."),
            ("technical-fault", "Неисправен датчик, сообщено ответственному лицу."),
            ("real-alarm", "Разбито стекло, вызвана полиция, объект под охраной до прибытия ответственного.")]


class Api:
    """The crew phone's calls, over HTTP with the session cookie."""

    def __init__(self, url: str, username: str, password: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.username, self.password = username, password
        self.timeout = timeout
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"content-type": "application/json"} if data else {})
        try:
            with self.opener.open(req, timeout=self.timeout) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            try:
                return e.code, json.loads(e.read() or b"null")
            except ValueError:
                return e.code, None

    def login(self) -> bool:
        status, _ = self.call("POST", "/api/login", {"username": self.username, "password": self.password})
        return status == 200

    def authed(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        status, answer = self.call(method, path, body)
        if status == 401 and self.login():  # the session ran out: log in again, once
            status, answer = self.call(method, path, body)
        return status, answer


def step_toward(lat: float, lon: float, to_lat: float, to_lon: float, km: float) -> tuple[float, float, float]:
    """Move up to `km` along the straight line; returns the new point and the distance left (km)."""
    dy = (to_lat - lat) * 111.32
    dx = (to_lon - lon) * 111.32 * math.cos(math.radians((lat + to_lat) / 2))
    left = math.hypot(dx, dy)
    if left <= km or left == 0:
        return to_lat, to_lon, 0.0
    f = km / left
    return lat + (to_lat - lat) * f, lon + (to_lon - lon) * f, left - km


@dataclass
class Crew:
    api: Api
    tick: float = 2.0  # seconds between polls (and positions while driving)
    speed_kmh: float = 60.0
    max_drive: float = 90.0  # seconds: far objects are reached this fast (a demo, not a road trip)
    accept_after: tuple[float, float] = (3.0, 8.0)
    on_site_for: float = 15.0
    verbose: bool = True
    lat: float | None = None
    lon: float | None = None
    working_on: int | None = None
    standing_aside: bool = False
    rng: random.Random = random.Random()

    def say(self, text: str) -> None:
        if self.verbose:
            print(f"[{time.strftime('%H:%M:%S')} {self.api.username}] {text}", flush=True)

    def post_position(self) -> None:
        if self.lat is not None and self.lon is not None:
            self.api.authed("POST", "/api/crew/position",
                            {"lat": round(self.lat, 6), "lon": round(self.lon, 6), "accuracy": 15})

    def step(self, assignment_id: int, status: str, **extra: Any) -> bool:
        body = {"status": status, "request_id": f"sim-{assignment_id}-{status}", **extra}
        code, answer = self.api.authed("POST", f"/api/assignments/{assignment_id}/status", body)
        if code == 200:
            self.say(f"assignment {assignment_id}: {status}")
            return True
        self.say(f"assignment {assignment_id}: {status} refused ({code}: {(answer or {}).get('detail')})")
        return False

    def poll(self) -> dict[str, Any] | None:
        code, answer = self.api.authed("GET", "/api/crew/assignment")
        if code != 200 or not isinstance(answer, dict):
            self.say(f"cannot read the assignment ({code})")
            return None
        g = answer.get("group") or {}
        if self.lat is None:  # start where the group was last seen, else at its base
            pos, base = g.get("position"), g.get("base")
            if pos:
                self.lat, self.lon = pos["lat"], pos["lon"]
            elif base:
                self.lat, self.lon = base["lat"], base["lon"]
        return answer

    def run_once(self) -> float:
        """One round; returns how long to wait before the next."""
        answer = self.poll()
        if answer is None:
            return self.tick * 5
        if answer.get("phones"):
            if not self.standing_aside:
                self.say("a crew member has the phone view open: standing aside")
            self.standing_aside = True
            return self.tick
        if self.standing_aside:
            self.say("the phone view is closed: taking over again")
            self.standing_aside = False
        a = answer.get("assignment")
        if a is None:
            self.working_on = None
            return self.tick
        aid, status = a["id"], a["status"]
        if aid != self.working_on:
            self.working_on = aid
            self.say(f"assignment {aid}: {a['object']['name'] if a.get('object') else 'alarm ' + str(a['alarm_id'])}")
        if status == "new":
            time.sleep(self.rng.uniform(*self.accept_after))
            self.step(aid, "accepted")
            return 0.5
        if status == "accepted":
            self.step(aid, "en-route")
            return 0.5
        if status == "en-route":
            if a.get("lat") is None or self.lat is None or self.lon is None:
                self.step(aid, "on-site")
                return self.tick
            dist = step_toward(self.lat, self.lon, a["lat"], a["lon"], 0)[2]
            km = max(self.speed_kmh * self.tick / 3600, dist * self.tick / self.max_drive)
            self.lat, self.lon, left = step_toward(self.lat, self.lon, a["lat"], a["lon"], km)
            self.post_position()
            if left <= 0.05:
                self.step(aid, "on-site")
            return self.tick
        if status == "on-site":
            time.sleep(self.on_site_for)
            outcome, report = self.rng.choice(OUTCOMES)
            self.step(aid, "finished", outcome=outcome, report=report)
            return self.tick
        return self.tick


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", required=True, help="Kuzet's web address, e.g. http://127.0.0.1:8000")
    p.add_argument("--user", required=True, help="a crew user (crew1, crew2 in the demo)")
    p.add_argument("--password", help="its password (default: $KUZET_SIM_PASSWORD)")
    p.add_argument("--tick", type=float, default=2.0, help="seconds between polls and positions")
    p.add_argument("--speed", type=float, default=60.0, help="km/h")
    p.add_argument("--max-drive", type=float, default=90.0, help="seconds to reach even a far object")
    p.add_argument("--on-site", type=float, default=15.0, help="seconds on site before finishing")
    p.add_argument("--accept-after", type=float, nargs=2, default=(3.0, 8.0), metavar=("MIN", "MAX"),
                   help="seconds before accepting (random between the two)")
    p.add_argument("--seed", type=int, help="random seed")
    p.add_argument("--quiet", action="store_true")


def main(args: argparse.Namespace) -> int:
    password = args.password or os.environ.get("KUZET_SIM_PASSWORD", "")
    if not password:
        print("kuzet sim crews: give --password or set KUZET_SIM_PASSWORD", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    api = Api(args.url, args.user, password)
    crew = Crew(api, tick=args.tick, speed_kmh=args.speed, max_drive=args.max_drive, on_site_for=args.on_site,
                accept_after=tuple(args.accept_after), verbose=not args.quiet, rng=random.Random(args.seed))
    while not api.login():
        crew.say("cannot log in yet; retrying")
        time.sleep(5)
    crew.say("logged in; waiting for assignments")
    try:
        while True:
            try:
                wait = crew.run_once()
            except (urllib.error.URLError, OSError, ValueError) as exc:  # Kuzet restarting: keep trying
                crew.say(f"connection trouble: {exc}")
                wait = crew.tick * 5
            time.sleep(wait)
    except KeyboardInterrupt:
        return 0
