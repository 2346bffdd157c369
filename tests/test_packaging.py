"""The production packaging, checked statically (no container engine here): the compose file
parses and has its services, ports, volumes and restart policies; every command it and the
Dockerfile run is a real `kuzet` command with real options (parsed by kuzet's own argparse); the
configuration mounted into the container passes Kuzet's own check; the licence is there."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from console import config
from kuzet.main import build_parser

ROOT = Path(__file__).resolve().parents[1]


def kuzet_command(argv: list[str]) -> Any:
    """Parse a command line as the `kuzet` entry point would; a test failure if it is not one."""
    assert argv and argv[0] == "kuzet", argv
    args = argv[1:]
    command = next((a for a in args if not a.startswith("-")), None)
    try:
        return build_parser(command).parse_args(args)
    except SystemExit:
        pytest.fail(f"not a kuzet command: {shlex.join(argv)}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of the final stage, line continuations joined."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    out = [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1] if " " in ln else "") for ln in lines]
    last_from = max(i for i, (ins, _a) in enumerate(out) if ins == "FROM")
    return out[last_from:]


def test_the_compose_file_has_postgres_and_kuzet(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"db", "kuzet"}
    db, kz = services["db"], services["kuzet"]
    assert db["image"].split(":")[0] == "postgres"  # the official image
    assert "POSTGRES_PASSWORD" in db["environment"] and "${" in db["environment"]["POSTGRES_PASSWORD"]
    assert all(s.get("restart") in ("always", "unless-stopped") for s in (db, kz))
    assert kz["depends_on"]["db"]["condition"] == "service_healthy"


def test_volumes_are_named_and_declared(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    db_mounts = {v.split(":")[0]: v.split(":")[1] for v in compose["services"]["db"]["volumes"]}
    assert db_mounts.get("pgdata") == "/var/lib/postgresql/data" and "pgdata" in declared
    kz = compose["services"]["kuzet"]
    kz_mounts = {v.split(":")[1]: v.split(":")[0] for v in kz["volumes"]}
    assert kz_mounts[kz["environment"]["KUZET_HOME"]] in declared  # the data directory is a named volume
    for source in (v.split(":")[0] for v in [*compose["services"]["db"]["volumes"], *kz["volumes"]]):
        if source.startswith("./"):
            assert (ROOT / source).exists(), source  # bind mounts point at files in the repository


def test_dc09_tcp_and_udp_and_the_web_are_published(compose: dict[str, Any]) -> None:
    ports = set(compose["services"]["kuzet"]["ports"])
    assert {"7000:7000/tcp", "7000:7000/udp", "8000:8000/tcp"} <= ports


def test_the_database_urls_point_at_the_postgres_service(compose: dict[str, Any]) -> None:
    env = compose["services"]["kuzet"]["environment"]
    owner, app = env["KUZET_DATABASE_URL"], env["KUZET_APP_DATABASE_URL"]
    assert owner.startswith("postgresql://kuzet_owner:") and "@db:5432/kuzet" in owner
    assert app.startswith("postgresql://kuzet_app:") and "@db:5432/kuzet" in app
    init = (ROOT / "deploy/postgres-init/10-kuzet-roles.sh").read_text()
    assert "CREATE ROLE kuzet_owner" in init and "CREATE ROLE kuzet_app" in init


def test_the_compose_command_is_a_real_kuzet_command_with_a_valid_config(compose: dict[str, Any]) -> None:
    kz = compose["services"]["kuzet"]
    args = kuzet_command(kz["command"])
    assert args.cmd == "run"
    mounted = {v.split(":")[1]: v.split(":")[0] for v in kz["volumes"]}
    settings = config.load(ROOT / mounted[args.config])  # Kuzet's own check of the mounted file
    assert settings.web_port == 8000 and settings.web_host == "0.0.0.0"
    assert [(d.host, d.port, d.tcp, d.udp) for d in settings.dc09] == [("0.0.0.0", 7000, True, True)]
    assert "devices:" in (ROOT / "docker-compose.yml").read_text()  # the serial passthrough, commented


def test_the_dockerfile_installs_a_wheel_runs_as_a_user_and_checks_health() -> None:
    final = dockerfile()
    base = final[0][1]
    assert base.startswith("python:3.1") and "slim" in base
    runs = " ".join(a for ins, a in final if ins == "RUN")
    assert "pip install" in runs and ".whl" in runs
    users = [a for ins, a in final if ins == "USER"]
    assert users and users[-1] not in ("root", "0")
    exposed = " ".join(a for ins, a in final if ins == "EXPOSE").split()
    assert {"7000/tcp", "7000/udp", "8000/tcp"} <= set(exposed)
    assert any(ins == "HEALTHCHECK" for ins, _a in final)
    [cmd] = [json.loads(a) for ins, a in final if ins == "CMD"]
    assert kuzet_command(cmd).cmd == "run"


def test_the_licence_is_the_one_pyproject_declares() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert text.lstrip().startswith("GNU AFFERO GENERAL PUBLIC LICENSE") and "Version 3, 19 November 2007" in text
    assert "13. Remote Network Interaction" in text
    assert 'license = "AGPL-3.0-or-later"' in (ROOT / "pyproject.toml").read_text()


def test_kuzet_version() -> None:
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args(["--version"])
    assert done.value.code == 0


def test_every_test_has_a_time_limit(pytestconfig: pytest.Config) -> None:
    # pytest-timeout is a test dependency (pyproject) and pyproject sets the limit: a hung test fails
    assert pytestconfig.pluginmanager.hasplugin("timeout"), "pytest-timeout is not installed"
    assert 0 < float(pytestconfig.getini("timeout")) <= 600
