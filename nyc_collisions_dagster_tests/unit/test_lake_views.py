"""The lake command opens only the views a query reads, so a summary question lists no month."""

from nyc_collisions_dagster.lake.query import views_in


def test_the_views_a_query_reads_and_not_its_columns_of_the_same_name() -> None:
    summary_question = "SELECT year, sum(crashes) AS crashes FROM summary GROUP BY ALL"
    assert views_in(summary_question) == ["summary"]
    assert views_in("SELECT * FROM persons p LEFT JOIN crashes c USING (x)") == [
        "crashes",
        "persons",
    ]
    assert views_in("select count(*) from crashes,vehicles", "raw") == ["crashes", "vehicles"]
    assert views_in("SELECT * FROM summary", "raw") == []  # the raw layer has no summary
    assert views_in("SELECT 1") == []
