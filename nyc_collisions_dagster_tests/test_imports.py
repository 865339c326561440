"""Every runtime dependency imports in this environment (a mismatched Dagster family fails here)."""

import importlib
from importlib import metadata

import pytest
from packaging.requirements import Requirement

RUNTIME = [Requirement(r) for r in metadata.requires("nyc_collisions_dagster") if "extra ==" not in r]
IMPORT_NAMES = {"dagster-webserver": "dagster_webserver", "dagster-aws": "dagster_aws"}


@pytest.mark.parametrize("requirement", RUNTIME, ids=lambda r: r.name)
def test_runtime_dependency_imports_at_its_pinned_version(requirement: Requirement) -> None:
    importlib.import_module(IMPORT_NAMES.get(requirement.name, requirement.name.replace("-", "_")))
    assert requirement.specifier.contains(metadata.version(requirement.name), prereleases=True)


def test_dagster_family_is_one_release() -> None:
    import dagster
    import dagster_aws
    import dagster_aws.s3  # the 2021 release fails here with "No module named 'dagster.core'"

    assert dagster.__version__ == "1.13.27"
    assert dagster_aws.__version__ == "0.29.27"
