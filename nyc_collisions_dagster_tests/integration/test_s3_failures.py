"""S3 that is missing, refusing or unreachable fails the run early, naming bucket and endpoint."""

import boto3
import dagster as dg

from nyc_collisions_dagster.raw.assets import crashes
from nyc_collisions_dagster.resources.parquet_io import ParquetIOManager
from nyc_collisions_dagster.resources.socrata import SocrataResource
from nyc_collisions_dagster_tests.outcomes import failure_message


def _materialize(server, storage_url: str) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [crashes],
        resources={
            "socrata": SocrataResource(domain=server.url),
            "io_manager": ParquetIOManager(storage_url=storage_url),
        },
        partition_key="2024-01-02",
        raise_on_error=False,
    )


def test_missing_bucket(make_soda_server, aws_env) -> None:
    server = make_soda_server()
    result = _materialize(server, "s3://no-such-bucket/collisions_raw_data")
    assert not result.success
    text = failure_message(result)
    assert f"S3 bucket 'no-such-bucket' does not exist at {aws_env['AWS_ENDPOINT_URL_S3']}" in text
    assert server.requests == []  # it failed before fetching anything
    buckets = {b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]}
    assert "no-such-bucket" not in buckets


def test_unreachable_endpoint(make_soda_server, aws_env, monkeypatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")
    server = make_soda_server()
    result = _materialize(server, "s3://nyc-application-collisions/collisions_raw_data")
    text = failure_message(result)
    assert (
        "S3 bucket 'nyc-application-collisions' at http://127.0.0.1:9 could not be reached" in text
    )
    assert server.requests == []


def test_wrong_credentials_fail_before_any_fetch(
    make_soda_server, moto_with_auth, monkeypatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_with_auth)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAWRONGKEY00000000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    server = make_soda_server()
    result = _materialize(server, "s3://nyc-application-collisions/collisions_raw_data")
    text = failure_message(result)
    assert f"S3 bucket 'nyc-application-collisions' at {moto_with_auth}" in text
    assert "ACCESS_DENIED" in text
    assert "not-the-secret" not in text
    assert server.requests == []
