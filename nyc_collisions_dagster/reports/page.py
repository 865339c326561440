"""The dashboard page: one HTML file that opens with no network, its figures embedded once as JSON
and drawn as SVG by Vega, whose JavaScript is inlined (vl-convert bundles it)."""

import functools
import html
import json
import os
import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import Any

import vl_convert
from shapely.geometry import MultiPolygon, mapping, shape
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient

from nyc_collisions_dagster.reports.charts import CHARTS, specs

_BOUNDARIES = Path(__file__).parents[1] / "processed" / "boroughs.geojson"
# About 100 m: borough outlines at a city's scale, in a 40 KB file instead of 730 KB.
_OUTLINE_TOLERANCE_DEGREES = 0.001

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 760px; color: #222; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
.note, .empty { color: #666; } .empty { padding: 1rem; border: 1px dashed #bbb; }
"""

# Fills each chart's named datasets from the embedded JSON, or shows its empty-state message.
_SCRIPT = """
const data = JSON.parse(document.getElementById("dashboard-data").textContent);
const charts = JSON.parse(document.getElementById("dashboard-charts").textContent);
const boroughs = JSON.parse(document.getElementById("dashboard-boroughs").textContent);
const datasets = {...data, boroughs: boroughs.features};
for (const chart of charts) {
  const container = document.getElementById(chart.id);
  if (chart.needs.some((name) => !datasets[name] || datasets[name].length === 0)) {
    container.className = "empty";
    container.textContent = chart.empty;
    continue;
  }
  const spec = {...chart.spec, datasets};
  vegaEmbed(container, spec, {renderer: "svg", actions: false})
    .catch((error) => { container.className = "empty"; container.textContent = String(error); });
}
"""


@functools.cache
def vega_bundle() -> str:
    """Vega, Vega-Lite and vega-embed as one script.

    Bundling takes seconds and gives the same script for the same vl-convert, so it is kept in
    the temporary folder, one file per vl-convert version, and made once per machine.
    """
    cached = (
        Path(tempfile.gettempdir())
        / f"nyc_collisions_dagster-vega-{version('vl-convert-python')}.js"
    )
    if cached.exists():
        return cached.read_text()
    bundle = vl_convert.javascript_bundle("window.vegaEmbed = vegaEmbed;")
    partial = cached.with_name(f".{cached.name}.{os.getpid()}.tmp")
    partial.write_text(bundle)
    partial.replace(cached)  # whole or not at all, for a build running alongside
    return bundle


@functools.cache
def borough_outlines() -> dict[str, Any]:
    """The shipped DCP borough boundaries, simplified for the map."""
    collection = json.loads(_BOUNDARIES.read_text())
    for feature in collection["features"]:
        simple = shape(feature["geometry"]).simplify(_OUTLINE_TOLERANCE_DEGREES)
        feature["geometry"] = json.loads(
            json.dumps(mapping(_clockwise(simple))), parse_float=_rounded
        )
    return collection


def _clockwise(geometry: BaseGeometry) -> BaseGeometry:
    """Outer rings clockwise, as d3-geo (Vega's maps) reads them; the other way round, a
    borough is drawn as the whole globe without it."""
    if isinstance(geometry, MultiPolygon):
        return MultiPolygon([orient(part, sign=-1.0) for part in geometry.geoms])
    return orient(geometry, sign=-1.0)


def _rounded(text: str) -> float:
    return round(float(text), 5)


def _script_json(value: Any) -> str:
    """JSON safe inside a <script> element: no `</` can close it early."""
    return json.dumps(value, separators=(",", ":")).replace("</", "<\\/")


def render(data: dict[str, Any]) -> str:
    """The page for the figures of `reports.figures.dashboard_data`."""
    chart_specs = specs()
    charts = [
        {"id": chart_id, "needs": needs, "empty": empty, "spec": chart_specs[chart_id]}
        for chart_id, _, needs, empty, _ in CHARTS
    ]
    through = data["through"] or "no data yet"
    sections = "\n".join(
        f'<section><h2>{html.escape(title)}</h2><div id="{chart_id}"></div></section>'
        for chart_id, title, _, _, _ in CHARTS
    )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>NYC motor vehicle collisions: people killed or seriously injured</title>
<style>{_STYLE}</style>
<script>{vega_bundle()}</script>
</head>
<body>
<h1>NYC motor vehicle collisions: people killed or seriously injured</h1>
<p class="note">Through {html.escape(through)}. From NYC Open Data's Motor Vehicle Collisions
(crashes, persons, vehicles), by the borough each crash lies in. KSI counts the people killed or
seriously injured (KABCO K and A); it is dense from April 2016, when the persons rows are.</p>
{sections}
<script type="application/json" id="dashboard-data">{_script_json(data)}</script>
<script type="application/json" id="dashboard-charts">{_script_json(charts)}</script>
<script type="application/json" id="dashboard-boroughs">{_script_json(borough_outlines())}</script>
<script>{_SCRIPT}</script>
</body>
</html>
"""
