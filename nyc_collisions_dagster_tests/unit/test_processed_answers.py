"""The processed layer's answers: every crash's borough, each person's severity and KSI, one
spelling per vehicle class and factor; on constructed rows and on the real rows."""

from collections import Counter
from datetime import date

import pyarrow as pa
import pytest
import shapely

from nyc_collisions_dagster.processed import boroughs
from nyc_collisions_dagster.processed.boroughs import locate_boroughs
from nyc_collisions_dagster.processed.severity import injury_severity
from nyc_collisions_dagster.processed.transforms import (
    FACTOR_COLUMNS,
    Findings,
    process_crashes,
    process_vehicles,
    respelled_factors,
)
from nyc_collisions_dagster.processed.vocabulary import canonical_factors, vehicle_categories
from nyc_collisions_dagster.raw.schema import SCHEMAS
from nyc_collisions_dagster_tests import answers, real_data
from nyc_collisions_dagster_tests.outcomes import typed_rows

LANDMARKS = {  # a point well inside each borough, and Marble Hill, Manhattan north of the river
    (40.7829, -73.9654): "MANHATTAN",
    (40.6602, -73.9690): "BROOKLYN",
    (40.7400, -73.8407): "QUEENS",
    (40.8506, -73.8769): "BRONX",
    (40.5826, -74.1667): "STATEN ISLAND",
    (40.8762, -73.9101): "MANHATTAN",
}


def _locate(points: list[tuple[float | None, float | None]]) -> list[str | None]:
    latitudes, longitudes = zip(*points)
    return locate_boroughs(pa.array(latitudes, pa.float64()), pa.array(longitudes)).to_pylist()


def _offshore(metres: float) -> tuple[float, float]:
    """A point `metres` south of Staten Island's southernmost vertex, over the water."""
    shore = shapely.get_coordinates(boroughs.shipped_boundaries()["STATEN ISLAND"])
    longitude, latitude = shore[shore[:, 1].argmin()]
    return latitude - metres / 110_574, longitude


def test_points_take_the_borough_whose_boundary_holds_them_or_the_nearest_within_250_m() -> None:
    points = [*LANDMARKS, _offshore(100), _offshore(1_000), (40.0, -75.0), (None, -73.9)]
    assert _locate(points) == [*LANDMARKS.values(), "STATEN ISLAND", None, None, None]


def test_a_point_on_a_shared_boundary_counts_for_one_borough_whatever_the_order() -> None:
    shapes = boroughs.shipped_boundaries()
    queens = {tuple(xy) for xy in shapely.get_coordinates(shapes["QUEENS"])}
    shared = [xy for xy in shapely.get_coordinates(shapes["BROOKLYN"]) if tuple(xy) in queens]
    assert shared, "Brooklyn and Queens share boundary vertices"
    on_line = [(latitude, longitude) for longitude, latitude in shared[:50]]
    first = _locate(on_line)
    assert set(first) == {"BROOKLYN"}  # the first of the two in BOROUGHS order
    assert _locate(on_line[::-1]) == first[::-1]
    assert _locate([*LANDMARKS, *on_line])[len(LANDMARKS) :] == first


def _persons(rows: list[dict[str, object]]) -> pa.Table:
    return pa.Table.from_pylist(rows, SCHEMAS["persons"])


@pytest.mark.parametrize(
    "person_injury, emotional_status, complaint, severity",
    [
        ("Killed", "Conscious", "None Visible", "K"),
        ("Injured", "Unconscious", "Complaint of Pain or Nausea", "A"),
        ("Injured", "Conscious", "Fracture - Distorted - Dislocation", "A"),
        ("injured ", "conscious", "SEVERE BLEEDING", "A"),
        ("Injured", "Conscious", "Minor Bleeding", "B"),
        ("Injured", "Shock", "Contusion - Bruise", "B"),
        ("Injured", "Conscious", "Complaint of Pain or Nausea", "C"),
        ("Injured", "Conscious", "Whiplash", "C"),
        ("Injured", None, None, "C"),
        ("Unspecified", "Unconscious", "Concussion", "O"),
        (None, None, None, "O"),
    ],
)
def test_injury_severity_on_the_kabco_scale(
    person_injury: str | None, emotional_status: str | None, complaint: str | None, severity: str
) -> None:
    person = {
        "person_injury": person_injury,
        "emotional_status": emotional_status,
        "complaint": complaint,
    }
    assert injury_severity(_persons([person])).to_pylist() == [severity]


def test_a_crash_counts_each_person_once_by_severity() -> None:
    crashes = pa.Table.from_pylist(
        [{"collision_id": 1, "crash_date": date(2024, 1, 2)}], SCHEMAS["crashes"]
    )
    outcomes = [("Killed", None), ("Injured", "Concussion"), ("Injured", "Abrasion")]
    outcomes += [("Injured", None), ("Unspecified", None)]
    persons = _persons(
        [
            {"unique_id": i, "collision_id": 1, "person_injury": injury, "complaint": complaint}
            for i, (injury, complaint) in enumerate(outcomes)
        ]
    )
    table = process_crashes(crashes, persons, SCHEMAS["vehicles"].empty_table(), Findings())
    [row] = table.to_pylist()
    counted = {k: row[k] for k in ("persons_killed", "persons_seriously_injured", "ksi")}
    assert counted == {"persons_killed": 1, "persons_seriously_injured": 1, "ksi": 2}
    assert row["persons_injured"] == 3


def test_spellings_of_one_kind_meet_and_different_kinds_stay_apart() -> None:
    spellings = {
        "pickup_van": ["Pick-up Truck", "Pick up tr", "PK", "Van"],
        "moped": ["Moped", "MOPED", "Motorscooter"],
        "emergency": ["Ambulance", "AMBULANCE", "FIRE TRUCK"],
        "suv": ["Station Wagon/Sport Utility Vehicle", "SPORT UTILITY / STATION WAGON"],
        "car": ["Sedan", "4 dr sedan", " sedan ", "PASSENGER VEHICLE"],
        "truck": ["Box Truck", "DELIVERY T", "Tractor Truck Diesel"],
        "e_bike": ["E-Bike", "E-BIKE", "e bike"],
        "e_scooter": ["E-Scooter", "Standing S"],
        "bicycle": ["Bike", "BICYCLE"],
        "bus": ["Bus", "SCHOOL BUS"],
        "unknown": ["UNKNOWN", "Unkno", "UNK"],
    }
    types = [text for texts in spellings.values() for text in texts]
    expected = [category for category, texts in spellings.items() for _ in texts]
    assert vehicle_categories(pa.array(types)).to_pylist() == expected
    six = ["Sedan", "Bus", "Bike", "Ambulance", "Moped", "Box Truck"]
    assert len(set(vehicle_categories(pa.array(six)).to_pylist())) == 6


def test_a_spelling_no_table_maps_is_other_and_reported_and_blanks_stay_null() -> None:
    vehicles = pa.Table.from_pylist(
        [
            {"unique_id": 1, "collision_id": 1, "vehicle_type": "Hovercraft"},
            {"unique_id": 2, "collision_id": 1, "vehicle_type": "Hovercraft"},
            {"unique_id": 3, "collision_id": 1, "vehicle_type": " "},
            {"unique_id": 4, "collision_id": 1, "contributing_factor_1": "Solar Flare"},
        ],
        SCHEMAS["vehicles"],
    )
    findings = Findings()
    table = process_vehicles(vehicles, SCHEMAS["crashes"].empty_table(), findings)
    assert table["vehicle_category"].to_pylist() == ["other", "other", None, None]
    assert table["contributing_factor_1"].to_pylist() == [None, None, None, "other"]
    assert findings.unmapped == {
        "vehicle_types": Counter({"Hovercraft": 2}),
        "factors": Counter({"Solar Flare": 1}),
    }
    assert findings["factors_respelled"] == 0


def test_factors_take_nypds_spelling_and_codes_that_are_not_factors_are_dropped() -> None:
    texts = ["Illnes", "Cell Phone (hand-Held)", "Drugs (Illegal)", "1", "80", "Unspecified", ""]
    assert canonical_factors(pa.array(texts)).to_pylist() == [
        "Illness",
        "Cell Phone (hand-held)",
        "Drugs (illegal)",
        None,
        None,
        None,
        None,
    ]


# --- the real rows -------------------------------------------------------------------------------


def _real(name: str, rows: list[tuple], days: list[date]) -> pa.Table:
    """Real source rows of `days` as a raw table, typed as the raw layer types them."""
    typed = [row for day in days for row in typed_rows(name, rows, day)]
    return pa.Table.from_pylist(typed, SCHEMAS[name])


@pytest.fixture(scope="module")
def real() -> dict[str, pa.Table]:
    if not real_data.available():
        pytest.skip(f"real NYC collisions data not found in {real_data.SHARED_DATA}")
    linked = real_data.load_linked()
    linked_days = [date(2024, 1, d) for d in range(1, 6)]
    tables = {name: _real(name, rows, linked_days) for name, rows in linked.items()}
    january = [date(2022, 1, d) for d in range(1, 32)]
    tables["crashes_2022_01"] = _real("crashes", real_data.load_crashes_2022_01(), january)
    return tables


@pytest.mark.real_data
@pytest.mark.parametrize(
    "crashes, filled, disagreements",
    [("crashes_2022_01", 2_170, 6), ("crashes", 321, 0)],
)
def test_real_crashes_get_their_borough_from_the_boundaries(
    real: dict[str, pa.Table], crashes: str, filled: int, disagreements: int
) -> None:
    findings = Findings()
    no_one = SCHEMAS["persons"].empty_table()
    table = process_crashes(real[crashes], no_one, SCHEMAS["vehicles"].empty_table(), findings)
    got = list(zip(table["crash_borough"].to_pylist(), table["crash_borough_source"].to_pylist()))
    assert got == [answers.crash_borough(row) for row in table.to_pylist()]
    assert findings["boroughs_from_coordinates"] == filled
    assert findings["borough_disagreements"] == disagreements
    # What stays without a borough has no point inside the city.
    unplaced = [row for row in table.to_pylist() if row["crash_borough"] is None]
    assert all(row["latitude"] is None for row in unplaced)


@pytest.mark.real_data
def test_real_persons_severity_and_crashes_ksi(real: dict[str, pa.Table]) -> None:
    persons = real["persons"]
    severity = injury_severity(persons).to_pylist()
    assert severity == [answers.severity(person) for person in persons.to_pylist()]
    assert Counter(severity) == {"O": 3_536, "C": 521, "B": 97, "A": 35, "K": 9}
    crashes = process_crashes(real["crashes"], persons, real["vehicles"], Findings())
    assert sum(crashes["ksi"].to_pylist()) == 44
    assert sum(crashes["persons_killed"].to_pylist()) == 9


@pytest.mark.real_data
def test_real_vehicle_classes(real: dict[str, pa.Table]) -> None:
    vehicles = real["vehicles"]
    findings = Findings()
    table = process_vehicles(vehicles, real["crashes"], findings)
    pairs = Counter(zip(table["vehicle_type"].to_pylist(), table["vehicle_category"].to_pylist()))
    classes = {text: category for text, category in pairs}
    assert classes == {text: answers.vehicle_category(text) for text in classes}
    typed = [c for c in table["vehicle_category"].to_pylist() if c is not None]
    vague = sum(c in ("other", "unknown") for c in typed)
    assert (len(typed), vague) == (2_123, 5)  # 0.24% of the rows with a vehicle_type
    assert findings.unmapped["vehicle_types"] == {}
    assert Counter(typed).most_common(3) == [("car", 970), ("suv", 698), ("pickup_van", 103)]


@pytest.mark.real_data
def test_real_factor_spellings_of_january_2022(real: dict[str, pa.Table]) -> None:
    crashes = real["crashes_2022_01"]
    findings = Findings()
    respelled = respelled_factors(crashes, FACTOR_COLUMNS, findings)
    source = Counter(v for name in FACTOR_COLUMNS for v in crashes[name].to_pylist() if v)
    factors = Counter(v for column in respelled for v in column.to_pylist() if v)
    assert findings["factors_respelled"] == 19  # 14 Illnes, 5 Cell Phone (hand-Held)
    assert findings.unmapped["factors"] == {}
    assert (len(source), len(factors)) == (44, 43)  # without Unspecified
    assert "Illnes" not in factors and factors["Illness"] == source["Illnes"] + source["Illness"]
