"""The production shape (docker-compose.yml, Dockerfile, .env.example), checked without Docker.

No Docker engine runs on the development machine or in CI, so the stack is not started here (see
the README's "Deploy"). What can be checked is: the compose file parses, it has every component,
every secret is required from .env (no default password), and every `airflow` command a service
runs exists, with its arguments, in the installed Airflow's own CLI parser.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

from transforms.config import REPO_ROOT
from transforms.tools.cluster import read_env_file

COMPOSE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
ENV_EXAMPLE = REPO_ROOT / ".env.example"
AIRFLOW_SERVICES = {"airflow-init", "api-server", "scheduler", "dag-processor", "triggerer", "worker"}
SECRET = re.compile(r"PASSWORD|SECRET|FERNET|TOKEN|_KEY\b")
# Commands that providers add to the CLI: checked against the provider's commands, and the
# provider must be installed in the image (it is not in the development venv).
PROVIDER_COMMANDS = {"celery": ("apache-airflow-providers-celery", {"worker", "flower", "stop"})}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def interpolate(text: str) -> str:
    """Compose's variable interpolation with the defaults (required variables get a dummy)."""
    text = re.sub(r"\$\{(\w+):-([^}]*)\}", r"\2", text)
    text = re.sub(r"\$\{(\w+):\?[^}]*\}", "x", text)
    return text.replace("$$", "$")


def airflow_commands(command) -> list[list[str]]:
    """Every `airflow ...` invocation of a service's command (a list, or a `bash -c` script)."""
    if isinstance(command, str):
        command = shlex.split(command)
    if command[:2] == ["bash", "-c"]:
        script = interpolate(command[2])
        # The container's variables that deploy/cluster.env sets (the service's env_file).
        shared = read_env_file(REPO_ROOT / "deploy" / "cluster.env")
        script = re.sub(r"\$(\w+)", lambda m: shared.get(m.group(1), m.group(0)), script)
        parts = [p.strip() for p in re.split(r"&&|\n|;", script)]
        return [shlex.split(p) for p in parts if p.startswith("airflow ")]
    return [[interpolate(a) for a in command]] if command and command[0] == "airflow" else []


def test_compose_parses_and_has_every_component(compose):
    services = compose["services"]
    assert {"postgres", "redis"} | AIRFLOW_SERVICES <= set(services)
    for name in AIRFLOW_SERVICES:
        service = services[name]
        assert service["build"] == "." and service["image"].startswith("omh-airflow")
        # The components' settings from deploy/cluster.env (which `make cluster` reads too), then
        # the service's own.
        assert service["env_file"] == ["deploy/cluster.env", ".env"]
        env = {**read_env_file(REPO_ROOT / service["env_file"][0]), **service["environment"]}
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql")
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
        assert env["OMH_WAREHOUSE_URL"].startswith("postgresql://")
        assert "omh-data:/opt/omh-data" in service["volumes"]
    for name in AIRFLOW_SERVICES - {"airflow-init"}:
        assert services[name]["depends_on"]["airflow-init"] == {"condition": "service_completed_successfully"}


def test_every_secret_comes_from_env_and_none_has_a_default(compose):
    text = COMPOSE.read_text(encoding="utf-8")
    required = set(re.findall(r"\$\{(\w+):\?", text))
    with_default = set(re.findall(r"\$\{(\w+):-", text))
    assert {"POSTGRES_PASSWORD", "OMH_DB_PASSWORD", "REDIS_PASSWORD", "AIRFLOW_FERNET_KEY"} <= required
    assert not {v for v in with_default if SECRET.search(v)}, with_default
    # No password written into a URL or a variable.
    for line in text.splitlines():
        code = line.split("#", 1)[0]
        for user_password in re.findall(r"://([^/@\s]*)@", code):
            assert ":" not in user_password or "${" in user_password, line
        match = re.match(r"\s*(\w+):\s*(\S.*)$", code)
        if match and SECRET.search(match.group(1)) and "AUTH_MANAGER" not in match.group(1):
            assert match.group(2).startswith("${") or match.group(2).startswith("/"), line
    # .env.example names every required variable, with no value.
    example = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    )
    assert required <= set(example), required - set(example)
    assert all(example[v] == "" for v in required), example


def test_every_service_command_is_an_existing_airflow_command(compose):
    from airflow.cli import cli_parser

    parser = cli_parser.get_parser()
    checked = []
    for name in sorted(AIRFLOW_SERVICES):
        commands = airflow_commands(compose["services"][name]["command"])
        assert commands, f"{name} runs no airflow command"
        for argv in commands:
            group = argv[1]
            if group in PROVIDER_COMMANDS:
                provider, known = PROVIDER_COMMANDS[group]
                assert argv[2] in known, argv
                assert provider in DOCKERFILE.read_text(encoding="utf-8"), (
                    f"the image must install {provider}"
                )
                checked.append(" ".join(argv))
                continue
            try:
                args = parser.parse_args(argv[1:])
            except SystemExit as exc:  # argparse's way of saying: no such command, or bad arguments
                raise AssertionError(f"{name}: `{' '.join(argv)}` is not an airflow command") from exc
            assert callable(args.func)
            checked.append(" ".join(argv))
    assert any(c.startswith("airflow db migrate") for c in checked)
    assert any(c.startswith("airflow pools set omh_warehouse") for c in checked)
    assert {
        "airflow scheduler",
        "airflow dag-processor",
        "airflow triggerer",
        "airflow celery worker",
    } <= set(checked)


def test_the_image_is_the_installed_airflow_with_the_project_and_the_celery_provider():
    text = DOCKERFILE.read_text(encoding="utf-8")
    (base,) = re.findall(r"^FROM\s+(\S+)", text, flags=re.M)
    assert base == f"apache/airflow:{version('apache-airflow')}-python3.11"
    assert re.search(r"pip install[^\n]*-c /opt/omh/constraints.txt", text)
    assert "-e /opt/omh" in text and "apache-airflow-providers-celery==" in text
    env = dict(re.findall(r"(AIRFLOW__CORE__\w+FOLDER)=(\S+)", text))
    assert env == {
        "AIRFLOW__CORE__DAGS_FOLDER": "/opt/omh/dags",
        "AIRFLOW__CORE__PLUGINS_FOLDER": "/opt/omh/plugins",
    }
    ignored = (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".venv", "var", ".env"} <= set(ignored)


def test_the_postgres_init_script_exists_and_is_valid_shell(compose):
    mounts = [v for v in compose["services"]["postgres"]["volumes"] if "docker-entrypoint-initdb.d" in v]
    (mount,) = mounts
    script = REPO_ROOT / Path(mount.split(":")[0])
    assert script.is_file()
    subprocess.run(["bash", "-n", str(script)], check=True)
    assert "OMH_DB_PASSWORD" in script.read_text(encoding="utf-8")


def test_the_image_pins_the_celery_packages_of_constraints():
    """The image installs the project with constraints.txt (which pins celery below 5.7 and the
    Celery provider, as `make setup` does), and its explicit provider pin is the same."""
    pins = dict(
        line.split("==", 1)
        for line in (REPO_ROOT / "constraints.txt").read_text().splitlines()
        if "==" in line
    )
    assert tuple(int(x) for x in pins["celery"].split(".")[:2]) < (5, 7), pins["celery"]
    provider = re.search(r"apache-airflow-providers-celery==(\S+?)\"", DOCKERFILE.read_text(encoding="utf-8"))
    assert provider and provider.group(1) == pins["apache-airflow-providers-celery"]
