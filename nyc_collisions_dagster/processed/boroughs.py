"""The borough of a point, from NYC City Planning's boundaries shipped beside this module.

`boroughs.geojson` is *Borough Boundaries (clipped to shoreline)*, release 16A, simplified;
`python -m scripts.borough_boundaries` regenerates it and checks the simplification.
"""

import json
import math
from collections.abc import Mapping
from functools import cache
from importlib import resources

import numpy as np
import pyarrow as pa
import shapely

BOROUGHS = ("BRONX", "BROOKLYN", "MANHATTAN", "QUEENS", "STATEN ISLAND")
# Bridges, piers and the shoreline lie just outside the clipped boundaries.
NEAREST_WITHIN_METRES = 250.0
# An equirectangular plane about the city's middle: over its 50 km its distances are off by under
# 0.3%, a metre at the 250 m reach, and it needs no projection library at run time.
_LATITUDE_0, _LONGITUDE_0 = 40.7, -73.95
_METRES_PER_DEGREE = (111_320.0 * math.cos(math.radians(_LATITUDE_0)), 110_574.0)


@cache
def shipped_boundaries() -> dict[str, shapely.Geometry]:
    """Each borough's boundary in WGS84 (longitude, latitude), read once per process."""
    text = resources.files(__package__).joinpath("boroughs.geojson").read_text()
    features = json.loads(text)["features"]
    found = {
        f["properties"]["borough"]: shapely.from_geojson(json.dumps(f["geometry"]))
        for f in features
    }
    return {name: found[name] for name in BOROUGHS}


def _metric(xy: np.ndarray) -> np.ndarray:
    return (xy - (_LONGITUDE_0, _LATITUDE_0)) * _METRES_PER_DEGREE


def _planar(
    boundaries: Mapping[str, shapely.Geometry],
) -> tuple[list[str], np.ndarray, shapely.STRtree, np.ndarray]:
    """The boundaries in the metric plane, prepared; and an index of their edges, each with the
    position of its borough: a nearest edge is found from the few edges near a point, not by a
    distance to every vertex of a borough."""
    shapes = np.array([shapely.transform(shape, _metric) for shape in boundaries.values()])
    shapely.prepare(shapes)
    edges, owners = [], []
    for index, shape in enumerate(shapes):
        for line in shapely.get_parts(shapely.boundary(shape)):
            xy = shapely.get_coordinates(line)
            edges.append(shapely.linestrings(np.stack([xy[:-1], xy[1:]], axis=1)))
            owners.append(np.full(len(xy) - 1, index))
    return list(boundaries), shapes, shapely.STRtree(np.concatenate(edges)), np.concatenate(owners)


@cache
def _shipped_planar() -> tuple[list[str], np.ndarray, shapely.STRtree, np.ndarray]:
    return _planar(shipped_boundaries())


def locate_boroughs(
    latitude: pa.Array | pa.ChunkedArray,
    longitude: pa.Array | pa.ChunkedArray,
    boundaries: Mapping[str, shapely.Geometry] | None = None,
) -> pa.Array:
    """The borough of each point: the one whose boundary covers it, else the nearest within
    250 m, else null.

    A point on a boundary shared by two boroughs goes to the first of them in BOROUGHS order.
    `boundaries` (WGS84, keyed by borough) replaces the shipped ones.
    """
    names, shapes, edges, owners = _shipped_planar() if boundaries is None else _planar(boundaries)
    lat = np.asarray(pa.array(latitude, pa.float64()).to_numpy(zero_copy_only=False), float)
    lon = np.asarray(pa.array(longitude, pa.float64()).to_numpy(zero_copy_only=False), float)
    x, y = _metric(np.column_stack([lon, lat])).T if len(lat) else (lon, lat)
    found = np.full(len(lat), -1)
    known = ~(np.isnan(x) | np.isnan(y))
    for index, shape in enumerate(shapes):
        open_rows = np.flatnonzero(known & (found < 0))
        inside = shapely.intersects_xy(shape, x[open_rows], y[open_rows])
        found[open_rows[inside]] = index
    outside = np.flatnonzero(known & (found < 0))
    if len(outside):
        points = shapely.points(x[outside], y[outside])
        point_at, edge_at = edges.query_nearest(
            points, max_distance=NEAREST_WITHIN_METRES, all_matches=False
        )
        found[outside[point_at]] = owners[edge_at]
    labels = pa.array(names, pa.string())
    return labels.take(pa.array(found, mask=found < 0))
