"""Every runtime dependency imports in this environment (a mismatched Dagster family fails here)."""

import importlib
from importlib import metadata

import pytest
from packaging.requirements import Requirement

RUNTIME = [
    Requirement(r) for r in metadata.requires("nyc_collisions_dagster") if "extra ==" not in r
]
IMPORT_NAMES = {
    "dagster-webserver": "dagster_webserver",
    "dagster-aws": "dagster_aws",
    "vl-convert-python": "vl_convert",
}


@pytest.mark.parametrize("requirement", RUNTIME, ids=lambda r: r.name)
def test_runtime_dependency_imports_at_its_pinned_version(requirement: Requirement) -> None:
    importlib.import_module(IMPORT_NAMES.get(requirement.name, requirement.name.replace("-", "_")))
    assert requirement.specifier.contains(metadata.version(requirement.name), prereleases=True)


def test_the_installed_dagster_family_is_one_release() -> None:
    """Integrations are numbered 0.(minor + 16).patch beside dagster: a 2021 dagster-aws is not."""
    import dagster_aws.s3  # noqa: F401  the 2021 release fails here: "No module named 'dagster.core'"

    major, minor, patch = metadata.version("dagster").split(".")
    for name in ("dagster-aws", "dagster-postgres", "dagster-docker"):
        assert metadata.version(name) == f"0.{int(minor) + 16}.{patch}", name
    assert metadata.version("dagster-webserver") == metadata.version("dagster")
