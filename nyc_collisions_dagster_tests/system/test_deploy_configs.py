"""The deploy/ files load and agree: every instance opens on PostgreSQL with its run launcher, runs
get every setting the pipeline reads, the compose file wires its services to them, and the ECS
task role reaches the lake's two layers and the step logs only."""

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy
import yaml

from nyc_collisions_dagster.constants import (
    PROCESSED_URL_ENV,
    REPORTS_URL_ENV,
    SOCRATA_APP_TOKEN_ENV,
    STORAGE_URL_ENV,
)
from nyc_collisions_dagster.instance.postgres import PooledPostgresEventLogStorage
from nyc_collisions_dagster.raw.recording import BATCHED_INSTANCE

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
INSTANCES = {
    "vm": ("dagster", "DefaultRunLauncher"),
    "docker": ("dagster_docker", "DockerRunLauncher"),
    "aws": ("dagster_aws.ecs", "EcsRunLauncher"),
}
# What a production run must be given: where each layer of the lake is (unset, a run writes to a
# folder inside its container, lost with it), and the app token.
RUN_SETTINGS = {STORAGE_URL_ENV, PROCESSED_URL_ENV, REPORTS_URL_ENV, SOCRATA_APP_TOKEN_ENV}
# And the instance's setting that stores a range's days a batch at a time.
RUN_SETTINGS |= set(BATCHED_INSTANCE)
# Where the production instances may differ: where runs go, and where step logs are kept.
PER_PLATFORM = {"run_launcher", "compute_logs"}
# The values deploy/aws/dagster.yaml reads from the ECS task definitions of the daemon and the
# webserver, here made up.
SECRETS_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret"
ECS_ENV = {
    "DAGSTER_RUN_TASK_ROLE_ARN": "arn:aws:iam::123456789012:role/collisions-run",
    "DAGSTER_RUN_EXECUTION_ROLE_ARN": "arn:aws:iam::123456789012:role/collisions-run-execution",
    "DAGSTER_RUN_LOG_GROUP": "/ecs/collisions-runs",
    "SOCRATA_APP_TOKEN_SECRET_ARN": f"{SECRETS_ARN}:socrata-app-token",
    "DAGSTER_POSTGRES_PASSWORD_SECRET_ARN": f"{SECRETS_ARN}:dagster-postgres-password",
    "DAGSTER_COMPUTE_LOGS_BUCKET": "nyc-application-collisions",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _env_names(config: Any) -> set[str]:
    """The environment variables a config reads with `{env: NAME}`."""
    if isinstance(config, dict):
        if set(config) == {"env"}:
            return {config["env"]}
        return set().union(*map(_env_names, config.values()))
    if isinstance(config, list):
        return set().union(*map(_env_names, config))
    return set()


def _storages(config: dict[str, Any]) -> list[Any]:
    """The run, event log and schedule storages' entries (each names its own class)."""
    return [config[name] for name in ("run_storage", "event_log_storage", "schedule_storage")]


def test_production_instances_differ_only_where_runs_go() -> None:
    configs = {name: _yaml(DEPLOY / name / "dagster.yaml") for name in INSTANCES}
    shared = {
        name: {k: v for k, v in c.items() if k not in PER_PLATFORM} for name, c in configs.items()
    }
    assert shared["docker"] == shared["vm"] == shared["aws"]
    for name, (module, launcher) in INSTANCES.items():
        assert (
            configs[name]["run_launcher"]["module"],
            configs[name]["run_launcher"]["class"],
        ) == (module, launcher)
    # The pool limits are the sample's, which `make dev` uses.
    assert shared["vm"]["concurrency"] == _yaml(DEPLOY / "dagster.yaml")["concurrency"]


@pytest.mark.parametrize("platform", INSTANCES)
def test_production_instance_opens_on_postgres(
    platform: str, postgres_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in {**postgres_env, **ECS_ENV}.items():
        monkeypatch.setenv(name, value)
    shutil.copy(DEPLOY / platform / "dagster.yaml", tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.get_run_records() == []  # the schema was made in the new database
        assert type(instance.run_launcher).__name__ == INSTANCES[platform][1]
        assert isinstance(instance.event_log_storage, PooledPostgresEventLogStorage)
        assert isinstance(instance.run_coordinator, dg.QueuedRunCoordinator)
        assert instance.run_monitoring_enabled
        # The daemon evaluates the processed layer's automation sensor.
        assert "ASSET" in instance.get_required_daemon_types()
        assert instance.auto_materialize_use_sensors
        if platform == "aws":
            launcher = instance.run_launcher
            assert launcher.task_role_arn == ECS_ENV["DAGSTER_RUN_TASK_ROLE_ARN"]
            assert {s["name"]: s["valueFrom"] for s in launcher.secrets} == {
                "SOCRATA_APP_TOKEN": ECS_ENV["SOCRATA_APP_TOKEN_SECRET_ARN"],
                "DAGSTER_POSTGRES_PASSWORD": ECS_ENV["DAGSTER_POSTGRES_PASSWORD_SECRET_ARN"],
            }
            assert launcher.secrets_tags == [] and launcher.include_sidecars is False
            assert type(instance.compute_log_manager).__name__ == "S3ComputeLogManager"
    # The postgres extra's pin: SQLAlchemy 2.1 would pick psycopg 3, which breaks NOTIFY.
    assert sqlalchemy.dialects.postgresql.dialect.driver == "psycopg2"


@pytest.mark.parametrize("platform", ["docker", "aws"])
def test_runs_get_every_setting_their_instance_reads(platform: str) -> None:
    """A run's container opens the instance from the same file: storage and step logs."""
    config = _yaml(DEPLOY / platform / "dagster.yaml")
    launcher = config["run_launcher"]["config"]
    passed = set(launcher["env_vars"]) | {s["name"] for s in launcher.get("secrets", [])}
    assert _env_names([_storages(config), config.get("compute_logs")]) <= passed
    assert RUN_SETTINGS <= passed


def test_compose_file_wires_the_services() -> None:
    folder = DEPLOY / "docker"
    compose = _yaml(folder / "docker-compose.yaml")
    instance = _yaml(folder / "dagster.yaml")
    services = compose["services"]
    assert set(services) == {
        "postgres",
        "minio",
        "minio_bucket",
        "code_location",
        "webserver",
        "daemon",
    }
    dockerfile = (folder / "Dockerfile").read_text()
    home = re.search(r"DAGSTER_HOME=(\S+)", dockerfile).group(1)
    for name in ("code_location", "webserver", "daemon"):
        build = services[name]["build"]
        assert (folder / build["context"] / build["dockerfile"]).resolve() == folder / "Dockerfile"
    assert 'pip install ".[postgres,docker]"' in dockerfile
    assert re.search(r"^USER dagster$", dockerfile, re.M)
    [grpc] = [entry["grpc_server"] for entry in _yaml(folder / "workspace.yaml")["load_from"]]
    assert grpc["host"] == "code_location"
    assert f'"code-server", "start", "-h", "0.0.0.0", "-p", "{grpc["port"]}"' in dockerfile
    assert (
        services["code_location"]["environment"]["DAGSTER_CURRENT_IMAGE"]
        == services["code_location"]["image"]
    )

    assert services["webserver"]["command"][0] == "dagster-webserver"
    assert services["daemon"]["command"][:2] == ["dagster-daemon", "run"]
    for name in ("webserver", "daemon"):
        service = services[name]
        mounts = {mount.split(":")[1]: mount.split(":")[0] for mount in service["volumes"]}
        for file in ("dagster.yaml", "workspace.yaml"):
            assert (folder / mounts[f"{home}/{file}"]).resolve() == folder / file
        assert service["working_dir"] == home
        assert _env_names(_storages(instance)) <= set(service["environment"])
    # The daemon launches the runs: it has every setting the launcher passes on, and the
    # launcher puts run containers on the compose network.
    launcher = instance["run_launcher"]["config"]
    assert set(launcher["env_vars"]) <= set(services["daemon"]["environment"])
    assert RUN_SETTINGS <= set(services["daemon"]["environment"])
    assert launcher["network"] == compose["networks"]["default"]["name"]
    database = services["postgres"]["environment"]
    assert database["POSTGRES_DB"] == services["daemon"]["environment"]["DAGSTER_POSTGRES_DB"]
    urls = [
        services["daemon"]["environment"][name] for name in (STORAGE_URL_ENV, PROCESSED_URL_ENV)
    ]
    [bucket] = {url.split("/")[2] for url in urls}
    assert f"lake/{bucket}" in services["minio_bucket"]["command"][0]


def test_docker_compose_accepts_the_file() -> None:
    if (
        shutil.which("docker") is None
        or subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0
    ):
        pytest.skip("no `docker compose` on this machine")
    done = subprocess.run(
        ["docker", "compose", "-f", DEPLOY / "docker" / "docker-compose.yaml", "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def test_run_task_role_reaches_the_lake_and_the_step_logs_only() -> None:
    policy = json.loads((DEPLOY / "aws" / "run-task-role-policy.json").read_text())
    compute_logs = _yaml(DEPLOY / "aws" / "dagster.yaml")["compute_logs"]["config"]
    prefixes = {
        "collisions_raw_data/*",
        "collisions_processed_data/*",
        "collisions_reports/*",
        f"{compute_logs['prefix']}/*",
    }
    [objects, listing] = policy["Statement"]
    assert set(objects["Action"]) == {"s3:GetObject", "s3:PutObject"}
    assert {arn.split("/", 1)[1] for arn in objects["Resource"]} == prefixes
    assert listing["Action"] == "s3:ListBucket"
    assert set(listing["Condition"]["StringLikeIfExists"]["s3:prefix"]) == prefixes
