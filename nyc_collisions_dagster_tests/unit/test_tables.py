"""Each processed table is declared once; a step reads each raw source once, as narrow as it can."""

from nyc_collisions_dagster.processed.severity import SEVERITY_COLUMNS
from nyc_collisions_dagster.processed.tables import TABLES, columns_to_read


def test_a_table_alone_reads_its_own_dataset_whole_and_only_what_it_needs_of_others() -> None:
    assert columns_to_read([TABLES["crashes"]]) == {
        "crashes": None,
        "persons": ["collision_id", *SEVERITY_COLUMNS],
        "vehicles": ["collision_id"],
    }
    assert columns_to_read([TABLES["vehicles"]]) == {
        "vehicles": None,
        "crashes": ["collision_id", "borough", "zip_code", "latitude", "longitude"],
    }


def test_tables_built_together_read_a_shared_source_whole_if_any_of_them_builds_it() -> None:
    together = columns_to_read([TABLES["persons"], TABLES["crashes"]])
    assert together == {"persons": None, "crashes": None, "vehicles": ["collision_id"]}
    assert columns_to_read(TABLES.values()) == {"crashes": None, "persons": None, "vehicles": None}


def test_persons_and_vehicles_read_the_same_columns_of_their_crashes() -> None:
    persons, vehicles = TABLES["persons"], TABLES["vehicles"]
    assert columns_to_read([persons, vehicles])["crashes"] == persons.reads["crashes"]
    assert persons.sources == ["persons", "crashes"] and vehicles.sources == ["vehicles", "crashes"]
