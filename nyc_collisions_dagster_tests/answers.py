"""The processed layer's answers for one row at a time, in plain Python: the oracle of its borough,
severity and spelling rules.

The borough is found point by point in New York State Plane (pyproj), not in the layer's
equirectangular plane; the KABCO table is written out again from the docs; the spellings come
from the shipped tables, read with the csv module.
"""

import csv
from functools import cache
from importlib import resources

import pyproj
import shapely
import shapely.ops

from nyc_collisions_dagster.processed import boroughs

_FEET_PER_METRE = 1 / 0.3048006096012192
_SERIOUS_STATUS = {"APPARENT DEATH", "UNCONSCIOUS", "SEMICONSCIOUS", "INCOHERENT"}
_SERIOUS = {
    "AMPUTATION",
    "CONCUSSION",
    "INTERNAL",
    "SEVERE BLEEDING",
    "SEVERE LACERATIONS",
    "FRACTURE - DISTORTED - DISLOCATION",
    "CRUSH INJURIES",
    "PARALYSIS",
    "SEVERE BURN",
}
_VISIBLE = {"MINOR BLEEDING", "CONTUSION - BRUISE", "ABRASION", "MINOR BURN", "MODERATE BURN"}


def _key(text: str | None) -> str:
    return " ".join((text or "").split()).upper()


def severity(person: dict[str, object]) -> str:
    injury = _key(person.get("person_injury"))  # type: ignore[arg-type]
    if injury == "KILLED":
        return "K"
    if injury != "INJURED":
        return "O"
    status, complaint = _key(person.get("emotional_status")), _key(person.get("complaint"))  # type: ignore[arg-type]
    if status in _SERIOUS_STATUS or complaint in _SERIOUS:
        return "A"
    return "B" if complaint in _VISIBLE else "C"


@cache
def _table(name: str) -> dict[str, str]:
    with resources.files("nyc_collisions_dagster.processed").joinpath(name).open() as f:
        return {row[0]: row[1] for row in list(csv.reader(f))[1:]}


def vehicle_category(text: str | None) -> str | None:
    return None if not _key(text) else _table("vehicle_types.csv").get(_key(text), "other")


def factor(text: str | None) -> str | None:
    if not _key(text):
        return None
    return _table("contributing_factors.csv").get(_key(text), "other") or None


@cache
def _state_plane() -> tuple[pyproj.Transformer, dict[str, shapely.Geometry]]:
    project = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:2263", always_xy=True)
    shapes = {
        name: shapely.ops.transform(project.transform, shape)
        for name, shape in boroughs.shipped_boundaries().items()
    }
    for shape in shapes.values():
        shapely.prepare(shape)
    return project, shapes


def located_borough(latitude: float, longitude: float) -> str | None:
    project, shapes = _state_plane()
    point = shapely.Point(project.transform(longitude, latitude))
    for name in boroughs.BOROUGHS:
        if shapes[name].covers(point):
            return name
    distance, name = min((shape.distance(point), name) for name, shape in shapes.items())
    return name if distance <= boroughs.NEAREST_WITHIN_METRES * _FEET_PER_METRE else None


def crash_borough(crash: dict[str, object]) -> tuple[str | None, str | None]:
    """(crash_borough, crash_borough_source) of a typed crash row."""
    if _key(crash["borough"]):  # type: ignore[arg-type]
        return crash["borough"], "reported"  # type: ignore[return-value]
    latitude, longitude = crash["latitude"], crash["longitude"]
    if latitude is None or longitude is None:
        return None, None
    if not (40.477399 <= latitude <= 40.917577 and -74.259090 <= longitude <= -73.700272):  # type: ignore[operator]
        return None, None
    found = located_borough(latitude, longitude)  # type: ignore[arg-type]
    return found, None if found is None else "coordinates"
