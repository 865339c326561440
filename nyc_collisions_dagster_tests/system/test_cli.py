"""`dagster asset materialize` as users run it, in a subprocess, on the test server and moto."""

import json
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import boto3
import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nyc_collisions_dagster_tests.outcomes import file_rows, typed_rows

REPO_ROOT = Path(__file__).resolve().parents[2]
DAGSTER = str(Path(sys.executable).with_name("dagster"))


def _materialize(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [DAGSTER, "asset", "materialize", "-m", "nyc_collisions_dagster.definitions", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_one_partition_into_the_local_folder(cli_env, soda_rows) -> None:
    done = _materialize(cli_env, "--select", "crashes", "--partition", "2024-01-03")
    assert done.returncode == 0, done.stderr[-3000:]
    path = Path(cli_env["COLLISIONS_STORAGE_URL"]) / "crashes" / "2024-01-03.parquet"
    assert file_rows(str(path)) == typed_rows("crashes", soda_rows["crashes"], date(2024, 1, 3))
    assert sorted(p.name for p in path.parent.iterdir()) == ["2024-01-03.parquet"]
    # One step: the checks, the lake check included, are evaluated in the asset's own process.
    with dg.DagsterInstance.from_config(cli_env["DAGSTER_HOME"]) as instance:
        [run] = instance.get_runs()
        assert [s.step_key for s in instance.get_run_step_stats(run.run_id)] == ["crashes"]
        checks = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
        evaluations = {e.dagster_event.event_specific_data.check_name: e for e in checks}
        assert set(evaluations) == {
            "row_count_matches_source",
            "unique_key_is_unique",
            "lake_matches_source",
        }
        assert all(e.dagster_event.event_specific_data.passed for e in evaluations.values())


def test_five_day_range_of_all_assets_into_s3(cli_env, aws_env, s3_storage, soda_rows) -> None:
    env = {**cli_env, **aws_env, "COLLISIONS_STORAGE_URL": s3_storage}
    done = _materialize(
        env, "--select", "crashes,persons,vehicles", "--partition-range", "2024-01-01...2024-01-05"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    s3 = boto3.client("s3")
    bucket, prefix = s3_storage.removeprefix("s3://").split("/", 1)
    for name in ("crashes", "persons", "vehicles"):
        for offset in range(5):
            day = date(2024, 1, 1) + timedelta(days=offset)
            key = f"{prefix}/{name}/{day}.parquet"
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            rows = pq.read_table(pa.BufferReader(body)).to_pylist()
            assert rows == typed_rows(name, soda_rows[name], day), key
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["KeyCount"]
    assert listed == 15


@pytest.mark.one_transport  # refused before any request
@pytest.mark.parametrize("key", ["2024-13-01", "../x", "2012-06-30"])
def test_an_invalid_partition_key_is_refused_before_any_request(
    key, make_soda_server, cli_env
) -> None:
    server = make_soda_server()
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("dagster")),
            "asset",
            "materialize",
            "-m",
            "nyc_collisions_dagster.definitions",
            "--select",
            "crashes",
            "--partition",
            key,
        ],
        cwd=REPO_ROOT,
        env={**cli_env, "SOCRATA_DOMAIN": server.url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert f"partition key `{key}`" in done.stderr.splitlines()[-1]
    assert server.requests == []


def test_dagster_cli_validates_the_definitions(tmp_path) -> None:
    done = subprocess.run(
        [
            DAGSTER,
            "definitions",
            "validate",
            "-m",
            "nyc_collisions_dagster.definitions",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "DAGSTER_HOME": str(tmp_path), "HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Validation successful" in done.stdout + done.stderr


def _assert_clear_line_at_the_end(done: subprocess.CompletedProcess, *words: str) -> None:
    """Among the last 20 lines, one names every word, and no stack trace follows it."""
    assert done.returncode != 0
    lines = (done.stdout + done.stderr).splitlines()
    found = [i for i, line in enumerate(lines) if all(word in line for word in words)]
    assert found and found[-1] >= len(lines) - 20, "\n".join(lines[-40:])
    after = "\n".join(lines[found[-1] :])
    assert "Stack Trace:" not in after and "Traceback" not in after, after


@pytest.mark.one_transport  # the disk is under test
def test_a_full_disk_ends_the_output_with_the_path_and_the_cause(cli_env, small_disk: Path) -> None:
    env = {**cli_env, "COLLISIONS_STORAGE_URL": str(small_disk / "raw")}
    done = _materialize(env, "--select", "persons", "--partition-range", "2024-01-01...2024-01-10")
    _assert_clear_line_at_the_end(
        done, f"Could not write {small_disk}/raw/persons/", "No space left on device"
    )


@pytest.mark.one_transport
def test_a_lake_under_a_file_ends_the_output_with_the_path_and_the_cause(
    cli_env, tmp_path: Path
) -> None:
    (tmp_path / "a_file").write_text("not a folder")
    env = {**cli_env, "COLLISIONS_STORAGE_URL": str(tmp_path / "a_file" / "raw")}
    done = _materialize(env, "--select", "crashes", "--partition", "2024-01-03")
    _assert_clear_line_at_the_end(
        done, f"Cannot create {tmp_path}/a_file/raw/crashes", "Not a directory"
    )


@pytest.mark.one_transport
def test_a_day_s3_keeps_refusing_ends_the_output_with_the_object_and_the_cause(
    cli_env, aws_env, s3_storage, s3_fault_proxy
) -> None:
    s3_fault_proxy.refused = ("crashes/2024-01-03.parquet",)
    env = {**cli_env, **aws_env, "COLLISIONS_STORAGE_URL": s3_storage}
    env["AWS_ENDPOINT_URL_S3"] = s3_fault_proxy.url
    two_attempts = {"resources": {"io_manager": {"config": {"s3_attempts": 2}}}}
    done = _materialize(
        env, "--select", "crashes", "--partition-range", "2024-01-01...2024-01-05",
        "--config-json", json.dumps(two_attempts),
    )  # fmt: skip
    _assert_clear_line_at_the_end(
        done, f"Could not write {s3_storage}/crashes/2024-01-03.parquet", "SLOW_DOWN"
    )
