"""Materialization metadata that shows data in the UI: a preview and the rows of each day."""

from collections.abc import Mapping

import dagster as dg
import pyarrow as pa

_PREVIEW_ROWS = 5
_PREVIEW_COLUMNS = 10


def markdown_preview(table: pa.Table) -> dg.MarkdownMetadataValue:
    """The first rows and columns of a day's table as a Markdown table."""
    columns = table.column_names[:_PREVIEW_COLUMNS]
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    for row in table.select(columns).slice(0, _PREVIEW_ROWS).to_pylist():
        cells = ("" if row[c] is None else str(row[c]).replace("|", "\\|").strip() for c in columns)
        lines.append("| " + " | ".join(cells) + " |")
    return dg.MetadataValue.md("\n".join(lines))


def table_schema(schema: pa.Schema, notes: Mapping[str, str] | None = None) -> dg.TableSchema:
    """An Arrow schema as Dagster shows it in the UI, with a description of the `notes` columns."""
    notes = notes or {}
    return dg.TableSchema(
        columns=[dg.TableColumn(f.name, str(f.type), notes.get(f.name)) for f in schema]
    )


def day_counts_table(rows_by_partition: dict[str, int]) -> dg.TableMetadataValue:
    return dg.MetadataValue.table(
        records=[
            dg.TableRecord({"partition": key, "rows": rows})
            for key, rows in sorted(rows_by_partition.items())
        ],
        schema=dg.TableSchema(
            columns=[dg.TableColumn("partition", "string"), dg.TableColumn("rows", "int")]
        ),
    )
