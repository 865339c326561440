"""The app token and the AWS secret key never reach the run log, metadata, errors or a URL."""

import dagster as dg
from dagster._serdes import serialize_value

from nyc_collisions_dagster.raw.assets import collision_assets
from nyc_collisions_dagster.resources.parquet_io import ParquetIOManager
from nyc_collisions_dagster.resources.socrata import SocrataResource

APP_TOKEN = "app-token-7f3a9c"
AWS_SECRET = "aws-secret-2b8e41"


def _run(instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    """A run configured the production way: every setting from the environment."""
    return dg.materialize(
        collision_assets,
        resources={"socrata": SocrataResource(), "io_manager": ParquetIOManager()},
        partition_key="2024-01-02",
        instance=instance,
        raise_on_error=False,
    )


def test_secrets_stay_out_of_logs_metadata_and_errors(
    make_soda_server, s3_storage, monkeypatch, capfd
) -> None:
    monkeypatch.setenv("SOCRATA_APP_TOKEN", APP_TOKEN)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    monkeypatch.setenv("COLLISIONS_STORAGE_URL", s3_storage)
    good = make_soda_server(app_tokens={APP_TOKEN})
    bad = make_soda_server(app_tokens={"another-token"})
    instance = dg.DagsterInstance.ephemeral()

    monkeypatch.setenv("SOCRATA_DOMAIN", good.url)
    succeeded = _run(instance)
    monkeypatch.setenv("SOCRATA_DOMAIN", bad.url)
    failed = _run(instance)

    assert succeeded.success and not failed.success
    assert any(APP_TOKEN in str(r.headers.values()) for r in good.requests)  # it was really sent
    # ...as the X-App-Token header only: never in a URL, a SODA 2.1 parameter or a SODA3 body.
    for request in good.requests + bad.requests:
        assert APP_TOKEN not in request.path + str(request.params)
    everything = [
        serialize_value(e) for run in (succeeded, failed) for e in instance.all_logs(run.run_id)
    ]
    output = capfd.readouterr()
    everything += [output.out, output.err]
    assert any("HTTP 403" in text for text in everything)
    for text in everything:
        assert APP_TOKEN not in text
        assert AWS_SECRET not in text
