"""The dashboard's charts as Vega-Lite specs, built with Altair. Each reads a named dataset that
the page fills from its embedded JSON, so the figures are written into the page once."""

from typing import Any

import altair as alt

BOROUGH = "datum.borough || 'Unknown'"
WIDTH = 640


def _named(name: str) -> alt.NamedData:
    return alt.NamedData(name=name)


def monthly_chart() -> alt.TopLevelMixin:
    """Crashes, injured and KSI by month, one line per borough, one panel per figure."""
    return (
        alt.Chart(_named("monthly"))
        .transform_calculate(borough_name=BOROUGH)
        .transform_fold(["crashes", "injured", "ksi"], as_=["figure", "value"])
        .mark_line(strokeWidth=1.5)
        .encode(
            x=alt.X("month:T", title=None),
            y=alt.Y("value:Q", title=None),
            color=alt.Color("borough_name:N", title="Borough"),
            tooltip=["month:T", "borough_name:N", "figure:N", "value:Q"],
        )
        .properties(width=WIDTH, height=140)
        .facet(row=alt.Row("figure:N", title=None, sort=["crashes", "injured", "ksi"]))
        .resolve_scale(y="independent")
    )


def yearly_chart() -> alt.TopLevelMixin:
    """People killed or seriously injured by year, stacked by borough: the trend."""
    return (
        alt.Chart(_named("monthly"))
        .transform_calculate(borough_name=BOROUGH, year="slice(datum.month, 0, 4)")
        .mark_bar()
        .encode(
            x=alt.X("year:O", title=None),
            y=alt.Y("sum(ksi):Q", title="KSI"),
            color=alt.Color("borough_name:N", title="Borough"),
            tooltip=["year:O", "borough_name:N", "sum(ksi):Q", "sum(crashes):Q"],
        )
        .properties(width=WIDTH, height=220)
    )


def ksi_rate_chart() -> alt.TopLevelMixin:
    """KSI per 100 crashes by borough over the whole history."""
    return (
        alt.Chart(_named("monthly"))
        .transform_calculate(borough_name=BOROUGH)
        .transform_aggregate(ksi="sum(ksi)", crashes="sum(crashes)", groupby=["borough_name"])
        .transform_calculate(rate="datum.crashes ? 100 * datum.ksi / datum.crashes : 0")
        .mark_bar()
        .encode(
            y=alt.Y("borough_name:N", title=None, sort="-x"),
            x=alt.X("rate:Q", title="KSI per 100 crashes"),
            tooltip=["borough_name:N", alt.Tooltip("rate:Q", format=".2f"), "ksi:Q", "crashes:Q"],
        )
        .properties(width=WIDTH - 120, height=180)
    )


def top_chart(dataset: str, title: str) -> alt.TopLevelMixin:
    """The top names among KSI crashes, as bars."""
    return (
        alt.Chart(_named(dataset))
        .mark_bar()
        .encode(
            y=alt.Y("name:N", title=None, sort="-x"),
            x=alt.X("crashes:Q", title=title),
            tooltip=["name:N", "crashes:Q"],
        )
        .properties(width=WIDTH - 240, height=240)
    )


def map_chart() -> alt.TopLevelMixin:
    """KSI crashes over the borough outlines, with no tile server."""
    outlines = (
        alt.Chart(_named("boroughs"))
        .mark_geoshape(fill="#eeeeee", stroke="#888888", strokeWidth=0.5)
        .project(type="mercator")
    )
    points = (
        alt.Chart(_named("ksi_crashes"))
        .transform_calculate(borough_name=BOROUGH)
        .mark_circle(size=14, opacity=0.7)
        .encode(
            longitude="longitude:Q",
            latitude="latitude:Q",
            color=alt.Color("borough_name:N", title="Borough"),
            tooltip=["crash_date:T", "borough_name:N", "collision_id:Q"],
        )
    )
    return alt.layer(outlines, points).properties(width=WIDTH, height=WIDTH)


# Each chart: its container's id, its heading, the datasets it needs (an empty one shows the
# message instead), the message, and its spec.
CHARTS: list[tuple[str, str, list[str], str, Any]] = [
    ("chart-monthly", "Crashes, injured and KSI by month and borough", ["monthly"],
     "No crash in the lake yet.", monthly_chart),
    ("chart-yearly", "People killed or seriously injured (KSI) by year", ["monthly"],
     "No crash in the lake yet.", yearly_chart),
    ("chart-ksi-rate", "KSI per 100 crashes by borough", ["monthly"],
     "No crash in the lake yet.", ksi_rate_chart),
    ("chart-factors", "Top contributing factors of KSI crashes", ["top_factors_ksi"],
     "No crash with a person killed or seriously injured yet.",
     lambda: top_chart("top_factors_ksi", "KSI crashes")),
    ("chart-vehicles", "Top vehicle classes in KSI crashes", ["top_vehicle_classes_ksi"],
     "No crash with a person killed or seriously injured yet.",
     lambda: top_chart("top_vehicle_classes_ksi", "KSI crashes")),
    ("ksi-map", "KSI crashes of the last 12 months", ["ksi_crashes"],
     "No located crash with a person killed or seriously injured in these 12 months.",
     map_chart),
]  # fmt: skip


def specs() -> dict[str, dict[str, Any]]:
    """Each container's Vega-Lite spec, without data."""
    return {chart_id: build().to_dict() for chart_id, _, _, _, build in CHARTS}
