"""The `kuzet` command. It only parses arguments and calls into the packages that do the work."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import signal
import subprocess
import sys
import traceback
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from console import config, db
from kuzet import __version__, admin_cli, compliance_cmd
from kuzet.runtime import DOMAINS, StartupError, System, check_settings

log = logging.getLogger("kuzet")


def _settings(args: argparse.Namespace) -> config.Settings:
    """The configuration file (if any) checked whole, the receivers' tables included: `ConfigError`."""
    s = config.load(getattr(args, "config", None))
    if getattr(args, "home", None):
        s.home = Path(args.home).resolve()
    check_settings(s)
    return s


# A SIGINT/SIGTERM that came before the event loop took the signals over (see `main`).
_stop_requested = False


def _early_stop(_signum: int, _frame: object) -> None:
    global _stop_requested
    _stop_requested = True


def _raise_fd_limit() -> None:
    """Every panel connection is a file descriptor: take the hard limit, not the shell's soft one."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else max(soft, 65536),
                                                        hard))
    except (ImportError, ValueError, OSError) as exc:
        log.warning("could not raise the open-file limit: %s", exc)


async def _start(system: System, settings: config.Settings, sims: list[subprocess.Popen[bytes]], *,
                 demo: bool, panels: int, rate: float) -> None:
    """Everything that starts, in order. Cancelled by a signal at any point: `_run` then stops
    whatever got started (the simulators are in `sims` as soon as they exist)."""
    if demo:
        from kuzet import demo as demo_mod

        modbus_port = settings.modbus[0]["port"] if settings.modbus else demo_mod.MODBUS_PORT
        sims.extend(demo_mod.start_line_simulators(settings.home, rate=rate, modbus_port=modbus_port))
    await system.start()
    assert system.pool is not None
    print(f"Kuzet is running. Web: http://{settings.web_host}:{system.web_port}/", flush=True)
    for r in system.receivers:
        print(f"  {r.health()['kind']} receiver {r.name}: {r.where()}", flush=True)
    print(f"  data: {settings.home}", flush=True)
    if demo:
        creds = await demo_mod.seed(system.pool, settings.home)
        print("Demo users (user / password / role):", flush=True)
        for c in creds:
            print(f"  {c['username']:<10} {c['password']:<22} {c['role']}", flush=True)
        port = system.dc09_port
        sims.extend(demo_mod.start_panel_simulators("127.0.0.1", port, panels=panels, rate=rate))
        from kuzet import demo_dispatch

        sims.extend(demo_dispatch.start_crew_simulators(f"http://127.0.0.1:{system.web_port}", creds))
        print(f"Simulators: {len(sims)} processes (DC-09 panels on port {port}, a Sur-Gard MLR2 on a"
              f" pseudo-terminal, a Modbus panel on port {modbus_port}, the crews of both response groups,"
              f" who stand aside while crew1/crew2 has the phone view /crew open).", flush=True)
    print("Ctrl-C stops everything.", flush=True)


async def _run(settings: config.Settings, *, demo: bool, panels: int, rate: float) -> int:
    """Start, run until SIGINT or SIGTERM, stop everything (embedded database and simulators
    included). The signal handlers are in place before anything starts, and start-up is cancelled
    by a signal like the running system is stopped by one."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if _stop_requested:
        stop.set()
    system = System(settings)
    sims: list[subprocess.Popen[bytes]] = []
    starting = asyncio.create_task(_start(system, settings, sims, demo=demo, panels=panels, rate=rate),
                                   name="start-up")
    stopped = asyncio.create_task(stop.wait(), name="wait-for-signal")
    try:
        await asyncio.wait({starting, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            print("Stopping during start-up.", flush=True)
            starting.cancel()
        try:
            await starting  # a start-up error ends here, after the `finally` stopped what had started
        except asyncio.CancelledError:
            if not stop.is_set():
                raise
        await stop.wait()
    finally:
        stopped.cancel()
        try:
            await system.stop()  # first, so that the simulators going away raises no trouble alarm
        finally:
            _end(sims)
            failed = starting.done() and not starting.cancelled() and starting.exception() is not None
            if not failed:  # a start-up error says so itself, in one line
                print("Kuzet stopped.", flush=True)
    return 0


def _end(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


def _open_database(settings: config.Settings) -> tuple[db.EmbeddedServer | None, str, str]:
    """(embedded server or None, owner DSN, runtime DSN) for the CLI's database commands."""
    if settings.database_url:
        return None, settings.database_url, settings.app_database_url or settings.database_url
    embedded = db.EmbeddedServer(settings.pgdata)
    owner = embedded.start()
    return embedded, owner, embedded.app_dsn


async def _db(settings: config.Settings, action: str) -> int:
    embedded, dsn, app_dsn = await asyncio.to_thread(_open_database, settings)
    try:
        runtime_role = await db.role_of(app_dsn) if app_dsn != dsn else db.RUNTIME_ROLE
        conn = await db.connect(dsn)
        try:
            if action == "migrate":
                applied = await db.migrate(conn, DOMAINS, runtime_role=runtime_role)
                print(f"applied: {applied or 'nothing (up to date)'}")
            else:
                if not await _has_schema(conn):
                    await db.migrate(conn, DOMAINS, runtime_role=runtime_role)
                st = await db.status(conn, DOMAINS)
                for k, v in st.items():
                    print(f"{k}: {v}")
        finally:
            await conn.close()
    finally:
        if embedded:
            embedded.stop()
    return 0


async def _audit_verify(settings: config.Settings, files: list[str]) -> int:
    """`kuzet audit verify`: the hash chain, and every anchor kept outside the database."""
    from console import audit

    paths = [Path(f) for f in files]
    if not paths and (settings.home / audit.ANCHORS_FILE).exists():
        paths = [settings.home / audit.ANCHORS_FILE]
    anchors: list[audit.Anchor] = []
    for p in paths:
        try:
            found = audit.read_anchors(p)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            print(f"cannot read anchors from {p}: {exc}", file=sys.stderr)
            return 2
        anchors += found
        print(f"anchors: {len(found)} from {p}")
    embedded, _owner, app_dsn = await asyncio.to_thread(_open_database, settings)
    try:
        conn = await db.connect(app_dsn)
        try:
            v = await audit.verify(conn, anchors)
        finally:
            await conn.close()
    finally:
        if embedded:
            embedded.stop()
    print(f"audit log: {v.entries} entries")
    if not anchors:
        print("warning: no anchors given: hash links alone cannot show a deleted tail or a rewritten chain")
    for problem in v.problems:
        print(f"PROBLEM: {problem}")
    if v.ok:
        print(f"OK: every hash link holds; {v.anchors_checked} anchors match")
        return 0
    print(f"TAMPERED: {len(v.problems)} problems")
    return 1


async def _compliance_export(args: argparse.Namespace, settings: config.Settings) -> int:
    """`kuzet compliance export`: gather the period's evidence and write the signed ZIP."""
    from compliance import export

    tz = ZoneInfo(settings.timezone)
    start, end = compliance_cmd.period(args, datetime.now(tz).date())
    out = Path(args.out)
    embedded, _owner, app_dsn = await asyncio.to_thread(_open_database, settings)
    try:
        conn = await db.connect(app_dsn)
        try:
            manifest = await export.export_bundle(
                conn, out, home=settings.home, period_from=start, period_to=end, lang=args.lang,
                settings=settings, actor=f"cli:{getpass.getuser()}",
                progress=lambda msg: print(f"  {msg}", flush=True))
        finally:
            await conn.close()
    finally:
        if embedded:
            embedded.stop()
    print(f"evidence bundle {out}: {len(manifest['files'])} files, period {start} .. {end}, report in {args.lang}")
    return 0


async def _has_schema(conn: Any) -> bool:
    return bool(await conn.fetchval("SELECT to_regclass('public.signals') IS NOT NULL"))


def _command(argv: list[str]) -> str | None:
    """The sub-command named in `argv` (the first word that is not an option), if any."""
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole `kuzet` command line. The simulators' and benchmarks' own options are defined (and
    their modules imported) only when `command` is "sim" or "bench": no other command loads them."""
    parser = argparse.ArgumentParser(prog="kuzet", description="Kuzet centralized security post")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more, and show tracebacks")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("demo", help="the whole system with simulated panels over a seeded demo post")
    p.add_argument("--dc09-port", type=int, default=7000)
    p.add_argument("--modbus-port", type=int, default=15020, help="the simulated Modbus panel's TCP port")
    p.add_argument("--web-port", type=int, default=8000)
    p.add_argument("--home", help="data directory (default $KUZET_HOME or ./var)")
    p.add_argument("--panels", type=int, default=12, help="simulated panels")
    p.add_argument("--rate", type=float, default=0.5, help="events per second over all simulated panels")

    p = sub.add_parser("run", help="run the post from a TOML configuration")
    p.add_argument("--config", required=True)
    p.add_argument("--home")

    p = sub.add_parser("db", help="database schema")
    p.add_argument("action", choices=["migrate", "status"])
    p.add_argument("--config")
    p.add_argument("--home")

    p = sub.add_parser("audit", help="the audit log")
    auditsub = p.add_subparsers(dest="audit", required=True)
    p = auditsub.add_parser("verify", help="check the hash chain and every anchor kept outside the database")
    p.add_argument("--anchor", action="append", default=[], metavar="FILE",
                   help="anchors (JSON lines, or a JSON object/list from a backup or an evidence export);"
                        " may be given several times; default: $KUZET_HOME/audit-anchors.jsonl")
    p.add_argument("--config")
    p.add_argument("--home")

    p = sub.add_parser("backup", help="back up the database (pg_dump), prove it restores, record it (row 3)")
    p.add_argument("--out", help="the dump file (default: $KUZET_HOME/backups/kuzet-<time>.dump)")
    p.add_argument("--no-verify", action="store_true", help="skip the restore into a scratch database")
    p.add_argument("--config")
    p.add_argument("--home")
    p = sub.add_parser("restore", help="restore a backup (pg_restore) and check its audit chain")
    p.add_argument("file")
    p.add_argument("--into", metavar="URL", help="an empty database (default: the configured one)")
    p.add_argument("--replace", action="store_true", help="overwrite the schema already in the target")
    p.add_argument("--config")
    p.add_argument("--home")

    p = sub.add_parser("sim", help="panel simulators speaking the real protocols")
    simsub = p.add_subparsers(dest="sim", required=True)
    if command == "sim":
        from receivers.sim import crews as sim_crews
        from receivers.sim import dc09 as sim_dc09
        from receivers.sim import modbus_panel as sim_modbus
        from receivers.sim import serial_rx as sim_serial

        sim_dc09.add_arguments(simsub.add_parser("dc09", help="a DC-09 transmitter (SIA DC-03 or Contact ID)"))
        sim_serial.add_arguments(simsub.add_parser("serial", help="a hardware receiver's automation output (MLR2 / 685)"))
        sim_modbus.add_arguments(simsub.add_parser("modbus", help="a Modbus alarm panel (TCP or RTU)"))
        sim_crews.add_arguments(simsub.add_parser("crews", help="a response group's crew answering through the phone API"))

    p = sub.add_parser("bench", help="benchmarks that print figures")
    benchsub = p.add_subparsers(dest="bench", required=True)
    if command == "bench":
        from kuzet.bench import ingest as bench

        bench.add_ingest_arguments(benchsub.add_parser("ingest", help="DC-09 ingest rate and ACK latency"))
        bench.add_e2e_arguments(benchsub.add_parser("e2e", help="a panel's signal -> the board websocket"))
        from kuzet.bench import flood as bench_flood

        bench_flood.add_arguments(benchsub.add_parser("flood", help="panels' ACK rate and memory while one peer floods"))
        p = benchsub.add_parser("supervision", help="supervision sweep over N accounts (in a scratch database)")
        p.add_argument("--accounts", type=int, default=100_000)
        p.add_argument("--config")
        p.add_argument("--home")

    admin_cli.add_arguments(sub)
    compliance_cmd.add_arguments(sub.add_parser("compliance", help="the evidence bundle: export, verify, public key"))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a command. A configuration Kuzet cannot use: one line on stderr, exit code 2; a post that
    cannot start (port taken, database refusing, data directory not writable): one line, exit code 1,
    everything already started stopped. The traceback only with -v."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command(argv))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        return _dispatch(parser, args)
    except config.ConfigError as exc:
        if args.verbose:
            traceback.print_exc()
        print(f"kuzet: {exc}", file=sys.stderr)
        return 2
    except StartupError as exc:
        if args.verbose:
            traceback.print_exc()
        print(f"kuzet: {exc}", file=sys.stderr)
        return 1


def _dispatch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.cmd in ("demo", "run"):
        # Before anything starts: a signal now must not end the process by the default handler
        # (which would leave the simulators and the embedded PostgreSQL behind).
        signal.signal(signal.SIGTERM, _early_stop)
        signal.signal(signal.SIGINT, _early_stop)
        _raise_fd_limit()
        s = _settings(args)
        if args.cmd == "demo":
            from kuzet import demo as demo_mod

            s.web_port = args.web_port
            s.dc09 = [config.Dc09Config(port=args.dc09_port)]
            s.serial, s.modbus = demo_mod.receiver_settings(s.home, args.modbus_port)
        from kuzet.loop import run_fast

        return int(run_fast(_run(s, demo=args.cmd == "demo", panels=getattr(args, "panels", 0),
                                rate=getattr(args, "rate", 0.0))))
    if args.cmd == "db":
        return asyncio.run(_db(_settings(args), args.action))
    if args.cmd == "user":
        return asyncio.run(admin_cli.user_main(args, _settings(args)))
    if args.cmd == "import":
        return asyncio.run(admin_cli.import_main(args, _settings(args)))
    if args.cmd == "audit":
        return asyncio.run(_audit_verify(_settings(args), args.anchor))
    if args.cmd in ("backup", "restore"):
        from kuzet import backup_cli

        if args.cmd == "backup":
            return asyncio.run(backup_cli.backup_command(_settings(args), args.out, check=not args.no_verify))
        return asyncio.run(backup_cli.restore_command(_settings(args), args.file, into=args.into,
                                                      replace=args.replace))
    if args.cmd == "compliance":
        if args.compliance == "verify":
            return compliance_cmd.verify(args)
        if args.compliance == "key":
            return compliance_cmd.key(args, _settings(args).home)
        return asyncio.run(_compliance_export(args, _settings(args)))
    if args.cmd == "sim":
        from receivers.sim import crews as sim_crews
        from receivers.sim import dc09 as sim_dc09
        from receivers.sim import modbus_panel as sim_modbus
        from receivers.sim import serial_rx as sim_serial

        sim_main = {"serial": sim_serial.main, "modbus": sim_modbus.main,
                    "crews": sim_crews.main}.get(args.sim, sim_dc09.main)
        return int(sim_main(args))
    if args.cmd == "bench":
        from kuzet.bench import ingest as bench

        if args.bench == "supervision":
            from kuzet.bench import supervision as bench_supervision

            return bench_supervision.main(_settings(args), args.accounts)
        if args.bench == "e2e":
            return bench.main_e2e(args)
        if args.bench == "flood":
            from kuzet.bench import flood as bench_flood

            return bench_flood.main(args)
        return bench.main_ingest(args)
    parser.error("unknown command")
    return 2


if __name__ == "__main__":
    sys.exit(main())


