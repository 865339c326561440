"""The project's Dagster instance parts: event log storages that keep their connections open,
and the runs whose process died (orphans.py).

Every day the raw assets land is recorded as a materialization as its file is written. Dagster's
stock storages open every connection anew outside the webserver (SQLAlchemy's NullPool), and that
churn, not SQL, is most of what an event costs: 14-36 ms on SQLite, 44-72 ms on PostgreSQL.
`sqlite.PooledSqliteEventLogStorage` and `postgres.PooledPostgresEventLogStorage` are Dagster's
own with their connections kept, in the same files and tables, so an instance can switch to them
and back without losing its history. Each event is still committed before `store_event`
returns: nothing is buffered, and a killed run loses no recorded day. The SQLite one also stores
a batch of a run's materializations in one transaction, as PostgreSQL's does in one INSERT.

The deploy/ configs use them; docs/architecture.md says what they change and how they could go
upstream. They override Dagster internals: the guard tests (test_event_log_storages.py) fail,
naming what changed, if a Dagster upgrade moves them. `postgres` needs the `postgres` extra.
"""
