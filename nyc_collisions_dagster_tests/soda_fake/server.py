"""A SODA 2.1- and SODA3-compatible HTTP server for tests: ``GET /resource/{id}.json|csv`` with
SoQL parameters and ``POST /api/v3/views/{id}/query.json|csv`` with a SoQL statement, modelled
latency, a bounded worker pool, injected faults and live mutations of the served rows.

Run ``python -m nyc_collisions_dagster_tests.soda_fake.server --help`` for the stand-alone server.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import random
import re
import signal
import socket
import sys
import threading
import time
import zlib
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import islice
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from operator import itemgetter
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

from nyc_collisions_dagster_tests import real_data
from nyc_collisions_dagster_tests.soda_fake import soql
from nyc_collisions_dagster_tests.soda_fake.generator import (
    DATASET_IDS,
    DATASET_NAMES,
    DATE_FIELD,
    FIELDS,
    HUMAN_ADDRESS,
    TYPES,
    UNIQUE_KEYS,
    Location,
    Row,
    Value,
    from_api_dict,
    gc_paused,
    generate,
)

SYSTEM_FIELDS = (":id", ":created_at", ":updated_at")
_SYSTEM_COLUMNS = {soql.Column(f) for f in SYSTEM_FIELDS}
FAULTS = ("429", "500", "503", "disconnect", "slow")
# How ``row_cost`` is spent: "sleep" waits, "cpu" works (see SodaServer._spend_cpu).
SERVER_MODELS = ("sleep", "cpu")
_RESOURCE = re.compile(r"/resource/([a-z0-9]{4}-[a-z0-9]{4})\.(json|csv)")
# dev.socrata.com/docs/queries: SODA3 queries are POSTed to /query; docs/formats: CSV and JSON.
_SODA3 = re.compile(r"/api/v3/views/([a-z0-9]{4}-[a-z0-9]{4})/query\.(json|csv)")
_SODA3_OPTIONS = frozenset({"query", "page", "includeSystem", "includeSynthetic"})
_CONTENT_TYPES = {"json": "application/json; charset=utf-8", "csv": "text/csv; charset=utf-8"}
_ID_LETTERS = "abcdefghijkmnpqrstuvwxyz23456789"
_HUMAN = encode_basestring(HUMAN_ADDRESS)
_EPOCH = datetime(2012, 7, 1)  # first crash_date of the dataset, the clock of an empty server
_BLOCK = 2048  # rows shuffled together when a query has no $order
# Hashed over and over by the "cpu" model: large enough that hashlib releases the GIL for it.
_WORK = bytes(1 << 16)


@dataclass(frozen=True)
class RequestRecord:
    """One answered request; ``seconds`` is the time to answer, without sending the body."""

    path: str
    dataset_id: str | None
    params: dict[str, str]
    status: int
    rows: int
    bytes_sent: int
    headers: dict[str, str]
    fault: str | None
    seconds: float
    # The query as SODA 2.1 parameters ($select, $where, $limit, ...), names without backquotes:
    # a SODA3 statement split into its clauses, its page as $limit/$offset. Tests read both
    # transports' requests through it.
    clauses: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SchemaChange:
    """Schema drift of one dataset: columns the source has added, each with the constant text
    every row carries for it, and columns it no longer sends."""

    added: Mapping[str, str] = field(default_factory=dict)
    dropped: Collection[str] = ()


class _Record:
    """A served row plus its system fields and lazily cached renderings of ``SELECT *``."""

    __slots__ = ("row", "row_id", "created", "updated", "csv", "json")

    def __init__(self, row: Row, row_id: str | None, created: str, updated: str) -> None:
        self.row, self.row_id, self.created, self.updated = row, row_id, created, updated
        self.csv: str | None = None
        self.json: str | None = None


def _stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds") + "Z"


def _field_getter(i: int) -> soql.Getter:
    return lambda record: record.row[i]


def _constant_getter(value: str) -> soql.Getter:
    return lambda record: value


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Location):
        return f'"POINT ({value.longitude} {value.latitude})"'
    return '"' + value.replace('"', '""') + '"'


def csv_line(values: Sequence[Any]) -> str:
    # Quote everything in one join, then unquote the nulls: twice as fast as per-field quoting,
    # which is kept for the rare value that itself holds a quote.
    parts = [
        "\x00" if v is None else v if v.__class__ is str else _csv_value(v)[1:-1] for v in values
    ]
    line = '"' + '","'.join(parts) + '"'
    if line.count('"') != 2 * len(parts):
        return ",".join([_csv_value(v) for v in values])
    return line.replace('"\x00"', "")


def _json_value(value: Any) -> str:
    if isinstance(value, Location):
        return (
            f'{{"latitude":{encode_basestring(value.latitude)},"longitude":'
            f'{encode_basestring(value.longitude)},"human_address":{_HUMAN}}}'
        )
    return encode_basestring(value)


def _json_object(keys: Sequence[str], values: Iterable[Any]) -> str:
    return (
        "{"
        + ",".join(
            [
                k + (encode_basestring(v) if v.__class__ is str else _json_value(v))
                for k, v in zip(keys, values)
                if v is not None
            ]
        )
        + "}"
    )


class ServedTable(Protocol):
    """What answering a request needs of a dataset's table."""

    id: str
    last_modified: str  # the :updated_at of the latest change, as the API writes it

    def query(
        self, q: soql.Query, rng: random.Random
    ) -> tuple[list[Output], Sequence[Any], bool]: ...

    def render(self, fmt: str, names: list[str], page: Any, star: bool) -> bytes: ...


class _Table:
    """One dataset's rows kept sorted by (crash_date, unique key), so that a crash_date range is a
    bisected slice and the common ``$order=crash_date,<key>`` needs no sort."""

    def __init__(
        self,
        name: str,
        rows: Iterable[Row],
        stamp_of: Callable[[Any], str],
        change: SchemaChange | None = None,
    ) -> None:
        self.name, self.id = name, DATASET_IDS[name]
        self.fields, self.types = FIELDS[name], TYPES[name]  # the layout of the stored rows
        self.date_i = self.fields.index(DATE_FIELD)
        self.key_i = self.fields.index(UNIQUE_KEYS[name])
        added, dropped = (dict(change.added), set(change.dropped)) if change else ({}, set())
        if unknown := dropped - set(self.fields):
            raise ValueError(f"cannot drop {sorted(unknown)}: not columns of {name}")
        if clashing := added.keys() & {*self.fields, *SYSTEM_FIELDS}:
            raise ValueError(f"cannot add {sorted(clashing)}: already columns of {name}")
        kept = [i for i, f in enumerate(self.fields) if f not in dropped]
        self.lock = threading.Lock()
        self.records = [_Record(r, None, s, s) for r in rows for s in (stamp_of(r[self.date_i]),)]
        self.records.sort(key=self.order_key)
        self.by_key = {r.row[self.key_i]: r for r in self.records}
        if len(self.by_key) != len(self.records):
            raise ValueError(f"duplicate {UNIQUE_KEYS[name]} values in {name}")
        self.last_modified = max((r.updated for r in self.records), default=_stamp(_EPOCH))
        # The served columns, which ``*`` follows. Stored rows keep the generator's shape, which
        # upsert and rows() rely on: a drifted dataset maps a row to the served columns only
        # when rendering it for ``*``, and an unchanged one renders the stored tuple as it is.
        self.served = [self.fields[i] for i in kept] + list(added)
        extra = list(added.values())
        self.project: Callable[[Row], Sequence[Value]] | None = (
            (lambda row: [row[i] for i in kept] + extra) if added or dropped else None
        )
        columns: dict[str, tuple[soql.Getter, str]] = {
            self.fields[i]: (_field_getter(i), self.types[i]) for i in kept
        }
        columns.update((f, (_constant_getter(v), "text")) for f, v in added.items())
        columns[":id"] = (self.row_id, "text")
        columns[":created_at"] = (lambda r: r.created, "fixed_timestamp")
        columns[":updated_at"] = (lambda r: r.updated, "fixed_timestamp")
        self.schema = soql.Schema(columns, self.id)
        self.json_keys = [encode_basestring(f) + ":" for f in self.served]
        # The crash_date fast paths read stored rows without compiling a column; when that
        # column or the key is dropped they must not answer what a compile would reject.
        self.dates_served = DATE_FIELD in columns
        self.stored_order: list[tuple[soql.Node, bool]] | None = (
            [(soql.Column(DATE_FIELD), False), (soql.Column(UNIQUE_KEYS[name]), False)]
            if self.dates_served and UNIQUE_KEYS[name] in columns
            else None
        )

    def order_key(self, record: _Record) -> tuple[Any, int]:
        return record.row[self.date_i] or "", int(record.row[self.key_i])  # type: ignore[arg-type]

    def row_id(self, record: _Record) -> str:
        if record.row_id is None:
            # a stable scramble of the unique key, shaped like Socrata's row-xxxx_xxxx_xxxx
            key = int(record.row[self.key_i])  # type: ignore[arg-type]
            n = (key * 0x9E3779B97F4A7C15 + zlib.crc32(self.id.encode())) % 2**60
            chars = "".join(_ID_LETTERS[(n >> (5 * k)) & 31] for k in range(12))
            record.row_id = f"row-{chars[:4]}_{chars[4:8]}_{chars[8:]}"
        return record.row_id

    def upsert(self, rows: Iterable[Row], stamp: str) -> None:
        with self.lock:
            for row in rows:
                old = self.by_key.get(row[self.key_i])  # type: ignore[arg-type]
                if old is None:
                    new = _Record(row, None, stamp, stamp)
                else:  # a replaced row keeps its identity even if it moves to another day
                    self._remove(old)
                    new = _Record(row, old.row_id, old.created, stamp)
                insort(self.records, new, key=self.order_key)
                self.by_key[row[self.key_i]] = new  # type: ignore[index]
            self.last_modified = max(self.last_modified, stamp)

    def delete(self, keys: Iterable[str], stamp: str) -> int:
        with self.lock:
            gone = [self.by_key.pop(str(k)) for k in keys if str(k) in self.by_key]
            for record in gone:
                self._remove(record)
            self.last_modified = stamp
            return len(gone)

    def touch_all(self, stamp: str) -> None:
        with self.lock:
            for record in self.records:
                record.updated = stamp
            self.last_modified = stamp

    def _remove(self, record: _Record) -> None:
        i = bisect_left(self.records, self.order_key(record), key=self.order_key)
        assert self.records[i] is record
        del self.records[i]

    def query(self, q: soql.Query, rng: random.Random) -> tuple[list[Output], list[Any], bool]:
        """Run a query: (outputs, page, star) where a star page holds records to render with the
        cache and any other page holds tuples of output values."""
        star = len(q.select) == 1 and q.select[0].star == "*"
        grouped = bool(q.group) or any(_is_aggregate(i.expr) for i in q.select)
        outputs = self._outputs(q, grouped)
        in_stored_order = q.order == self.stored_order
        with self.lock:
            # In stored order a page needs only the first offset+limit matches.
            matched = self._filter(
                q.where, None if grouped or not in_stored_order else q.offset + q.limit
            )
            if grouped:
                return outputs, self._grouped(q, outputs, matched, rng), False
            page = self._ordered_page(q, outputs, matched, rng)
        if star:
            return outputs, page, True
        getters = [o.getter for o in outputs]
        return outputs, [tuple(g(r) for g in getters) for r in page], False  # type: ignore[misc]

    def render(self, fmt: str, names: list[str], page: list[Any], star: bool) -> bytes:
        """The body of a page from ``query``; ``SELECT *`` rows are rendered once and cached."""
        if not star:
            return render_values(fmt, names, page)
        project = self.project
        if fmt == "csv":
            lines = [csv_header(names)]
            for record in page:
                if record.csv is None:
                    record.csv = csv_line(record.row if project is None else project(record.row))
                lines.append(record.csv)
            return ("\n".join(lines) + "\n").encode()
        objects = []
        for record in page:
            if record.json is None:
                record.json = _json_object(
                    self.json_keys, record.row if project is None else project(record.row)
                )
            objects.append(record.json)
        return ("[" + "\n,".join(objects) + "]\n").encode()

    def _outputs(self, q: soql.Query, grouped: bool) -> list[Output]:
        outputs: list[Output] = []
        for item in q.select:
            if item.star:
                if grouped:
                    raise soql.SoqlError(
                        "query.soql.type-mismatch", "* cannot be selected with $group"
                    )
                for n in self.served if item.star == "*" else SYSTEM_FIELDS:
                    c = self.schema.column(n)
                    outputs.append(Output(n, c.type, c.fn, soql.Column(n)))
                continue
            expr = item.expr
            assert expr is not None
            name = item.alias or soql.default_name(expr)
            if grouped and _is_aggregate(expr):
                call: soql.Call = expr  # type: ignore[assignment]
                kind = "number" if call.name == "count" else self.schema.compile(call.args[0]).type
                outputs.append(Output(name, kind, None, expr))
                continue
            if grouped and expr not in q.group:
                raise soql.SoqlError(
                    "query.soql.type-mismatch",
                    f"{soql.default_name(expr)} must be in $group or aggregated",
                )
            c = self.schema.compile(expr)
            outputs.append(Output(name, c.type, c.fn, expr))
        return outputs

    def _filter(self, where: soql.Node | None, first: int | None) -> list[_Record]:
        """A fresh list of the (``first``) rows matching $where, in stored order: conjuncts on
        crash_date narrow a bisected slice, the rest are evaluated row by row."""
        records, lo, hi = self.records, 0, len(self.records)
        residual: list[soql.Node] = []
        stack = [where] if where is not None else []
        key = lambda r: r.row[self.date_i] or ""  # noqa: E731
        while stack:
            node = stack.pop()
            if isinstance(node, soql.Op) and node.op == "and":
                stack += node.args
                continue
            bounds = date_bounds(node) if self.dates_served else None
            if bounds is None:
                residual.append(node)
                continue
            low, high = bounds
            lo = max(lo, bisect_right(records, "", key=key))  # absent dates never match
            if low is not None:
                lo = max(lo, (bisect_right if low[1] else bisect_left)(records, low[0], key=key))
            if high is not None:
                hi = min(hi, (bisect_left if high[1] else bisect_right)(records, high[0], key=key))
        if not residual:
            return records[lo : hi if first is None else min(hi, lo + first)]
        tests = [self.schema.compile(node).fn for node in residual]
        matches = (r for r in islice(records, lo, hi) if all(t(r) is True for t in tests))
        return list(islice(matches, first))

    def _ordered_page(
        self, q: soql.Query, outputs: list[Output], matched: list[_Record], rng: random.Random
    ) -> list[_Record]:
        if not q.order:
            return [matched[i] for i in _random_window(len(matched), q.offset, q.limit, rng)]
        if q.order != self.stored_order:
            aliases = {o.name: o for o in outputs if o.name not in self.schema.columns}
            keys: list[tuple[soql.Getter, str, bool]] = []
            for node, desc in q.order:
                if isinstance(node, soql.Column) and node.name in aliases:
                    alias = aliases[node.name]
                    keys.append((alias.getter, alias.type, desc))  # type: ignore[arg-type]
                else:
                    c = self.schema.compile(node)
                    keys.append((c.fn, c.type, desc))
            unique = {soql.Column(UNIQUE_KEYS[self.name]), soql.Column(":id")}
            if not any(node in unique for node, _ in q.order):
                rng.shuffle(matched)  # ties come back in random order, as upstream
            soql.sort_rows(matched, keys)
        return matched[q.offset : q.offset + q.limit]

    def _grouped(
        self, q: soql.Query, outputs: list[Output], matched: list[_Record], rng: random.Random
    ) -> list[tuple[Any, ...]]:
        group_fns = [self.schema.compile(g).fn for g in q.group]
        groups: dict[tuple[Any, ...], list[_Record]] = {} if q.group else {(): []}
        for record in matched:
            groups.setdefault(tuple(f(record) for f in group_fns), []).append(record)
        rows = []
        for members in groups.values():
            values = []
            for o in outputs:
                if o.getter is not None:
                    values.append(o.getter(members[0]))
                    continue
                call: soql.Call = o.expr  # type: ignore[assignment]
                arg = self.schema.compile(call.args[0]) if call.args else None
                raw = [arg.fn(r) for r in members] if arg else members
                values.append(soql.aggregate(call, arg.type if arg else "number", raw))
            rows.append(tuple(values))
        keys: list[tuple[soql.Getter, str, bool]] = []
        for node, desc in q.order:
            i = next(
                (i for i, o in enumerate(outputs) if node in (soql.Column(o.name), o.expr)), None
            )
            if i is None:
                raise soql.SoqlError(
                    "query.soql.type-mismatch",
                    f"$order of a grouped query must be a selected column: {node}",
                )
            keys.append((itemgetter(i), outputs[i].type, desc))
        if not keys:
            rng.shuffle(rows)
        soql.sort_rows(rows, keys)
        return rows[q.offset : q.offset + q.limit]


@dataclass(frozen=True)
class Output:
    """One output column of a query."""

    name: str
    type: str
    getter: soql.Getter | None  # None for an aggregate, computed per group from ``expr``
    expr: soql.Node


def _is_aggregate(node: soql.Node | None) -> bool:
    return isinstance(node, soql.Call) and node.name in soql.AGGREGATES


def date_bounds(node: soql.Node) -> tuple[tuple[str, bool] | None, tuple[str, bool] | None] | None:
    """``((low, exclusive), (high, exclusive))`` when ``node`` tests crash_date against literals."""
    mirror = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "="}
    if not isinstance(node, soql.Op) or node.negated or node.op not in (*mirror, "between"):
        return None
    args, op = node.args, node.op
    if op in mirror and isinstance(args[0], soql.Literal):
        args, op = (args[1], args[0]), mirror[op]
    if args[0] != soql.Column(DATE_FIELD):
        return None
    values = [
        soql.normalize_timestamp(a.value)
        if isinstance(a, soql.Literal) and isinstance(a.value, str)
        else None
        for a in args[1:]
    ]
    if None in values:
        return None
    first, last = values[0], values[-1]
    return {
        "<": (None, (first, True)),
        "<=": (None, (first, False)),
        ">": ((first, True), None),
        ">=": ((first, False), None),
        "=": ((first, False), (first, False)),
        "between": ((first, False), (last, False)),
    }[op]  # type: ignore[return-value]


def _random_window(n: int, offset: int, limit: int, rng: random.Random) -> list[int]:
    """Positions ``offset:offset+limit`` of a fresh random permutation of ``range(n)``, drawn by
    shuffling blocks and only the blocks in the window, so that paging 700k rows stays cheap."""
    starts = list(range(0, n, _BLOCK))
    rng.shuffle(starts)
    out: list[int] = []
    position, end = 0, offset + limit
    for start in starts:
        size = min(_BLOCK, n - start)
        if position + size > offset:
            block = list(range(start, start + size))
            rng.shuffle(block)
            out += block[max(0, offset - position) : end - position]
        position += size
        if position >= end:
            break
    return out


class _StoppedError(Exception):
    """The server is shutting down while a request waits; its connection is dropped."""


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a benchmark opens many connections at once

    def __init__(self, port: int, soda: SodaServer) -> None:
        self.soda = soda
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _Handler)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.sockets_lock:
                self.open_sockets.discard(request)

    def close_open_sockets(self) -> None:
        # Idle keep-alive connections block their handler threads in a read; this ends them.
        with self.sockets_lock:
            for sock in self.open_sockets:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up, and connections that stop() shuts, are normal in these tests.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def do_GET(self) -> None:
        self.server.soda._handle(self)

    def do_POST(self) -> None:
        self.server.soda._handle(self)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests read ``SodaServer.requests`` instead of stderr noise


class SodaServer:
    """Serves rows of the three datasets like data.cityofnewyork.us on 127.0.0.1.

    ``rows`` maps dataset names ("crashes") or ids ("h9gi-nx95") to rows as made by
    ``generator.generate`` / ``real_data`` or to API-style dicts; other datasets answer 404.
    ``tables`` adds datasets served read-only by tables built elsewhere, such as
    ``spooled_table.SpooledTable`` for more rows than memory would hold.
    ``schema_changes``, keyed the same way, makes a dataset serve columns other than
    ``FIELDS``; its rows, ``upsert`` and ``rows()`` keep the ``FIELDS`` shape all the same.
    Faults are drawn per request from ``faults`` with probability ``fault_rate`` by an RNG
    seeded with ``seed``, which also drives the shuffles of unordered results. ``now`` (naive
    UTC) is the clock that mutations stamp ``:updated_at`` with, never going backwards.
    ``server_model`` says how ``row_cost`` is spent per row served: "sleep" waits, leaving the
    machine to the client; "cpu" spends it as CPU time, as a database sorting and serializing a
    result competes with its clients for the cores.
    """

    def __init__(
        self,
        rows: Mapping[str, Sequence[Row | Mapping[str, Any]]],
        *,
        port: int = 0,
        latency: float = 0.0,
        row_cost: float = 0.0,
        max_concurrent: int | None = None,
        fault_rate: float = 0.0,
        faults: Collection[str] = FAULTS,
        retry_after: str = "1",
        slow_seconds: float = 5.0,
        app_tokens: Collection[str] | None = None,
        seed: int = 0,
        schema_changes: Mapping[str, SchemaChange] | None = None,
        max_limit: int | None = None,
        gzip: bool = False,
        server_model: str = "sleep",
        tables: Iterable[ServedTable] = (),
    ) -> None:
        if server_model not in SERVER_MODELS:
            raise ValueError(f"server_model must be one of {SERVER_MODELS}, not {server_model!r}")
        self.port, self.latency, self.row_cost = port, latency, row_cost
        self.server_model = server_model
        self.app_tokens = set(app_tokens) if app_tokens is not None else None
        self._slots = threading.BoundedSemaphore(max_concurrent) if max_concurrent else None
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._log: list[RequestRecord] = []
        self._forced: list[str] = []
        self._in_flight = 0
        # The most requests ever open at once, from arrival to the last byte sent.
        self.peak_in_flight = 0
        self.set_faults(
            rate=fault_rate, faults=faults, retry_after=retry_after, slow_seconds=slow_seconds
        )
        # Called with (path, params) as each request arrives, before it is answered: lets a test
        # change the data between two requests of one run, as upstream edits do.
        self.on_request: Callable[[str, dict[str, str]], None] | None = None
        self.max_limit = max_limit
        self.gzip = gzip
        self.withdrawn: int | None = None
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._tables: dict[str, ServedTable] = {table.id: table for table in tables}
        changes = {DATASET_NAMES.get(k, k): c for k, c in (schema_changes or {}).items()}
        for key, dataset_rows in rows.items():
            name = DATASET_NAMES.get(key, key)
            if name not in DATASET_IDS:
                raise ValueError(f"unknown dataset {key!r}")
            fixed = [from_api_dict(name, r) if isinstance(r, Mapping) else r for r in dataset_rows]
            with gc_paused():
                self._tables[DATASET_IDS[name]] = _Table(
                    name, fixed, _initial_stamp(), changes.pop(name, None)
                )
        if changes:
            raise ValueError(f"schema changes of datasets not served: {sorted(changes)}")
        self._last = max(
            (datetime.fromisoformat(t.last_modified[:-1]) for t in self._tables.values()),
            default=_EPOCH,
        )
        self.now = self._last

    # --- lifecycle ---------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def domain(self) -> str:
        """``host:port`` for clients such as sodapy that take a domain and a scheme prefix."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> SodaServer:
        self._stopping.clear()
        self._httpd = _HTTPServer(self.port, self)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"soda-server-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None or self._thread is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.close_open_sockets()
        self._httpd.server_close()
        self._thread.join()
        self._httpd = self._thread = None

    def __enter__(self) -> SodaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- faults, log and mutations -----------------------------------------------------
    def set_faults(
        self,
        *,
        rate: float | None = None,
        faults: Collection[str] | None = None,
        retry_after: str | None = None,
        slow_seconds: float | None = None,
    ) -> None:
        """Change fault injection while running; a fault is "429", "disconnect", "slow" or any
        other HTTP status such as "500"/"503"."""
        with self._lock:
            if rate is not None:
                self.fault_rate = rate
            if faults is not None:
                self.faults = tuple(faults)
            if retry_after is not None:
                self.retry_after = retry_after
            if slow_seconds is not None:
                self.slow_seconds = slow_seconds

    def fail_always(self, status: int | str = 503) -> None:
        """Every request fails from now on with this fault, as a source that stays down."""
        self.set_faults(rate=1.0, faults=(str(status),))

    def withdraw_resource(self, status: int = 410) -> None:
        """From now on SODA 2.1 (``/resource/``) answers ``status``, 404 or 410, as when Socrata
        retires SODA 2.x; SODA3 keeps answering."""
        self.withdrawn = status

    def fail_next(self, count: int, fault: int | str = 503) -> None:
        """The next ``count`` requests fail with ``fault``, whatever the fault rate."""
        with self._lock:
            self._forced += [str(fault)] * count

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._log)

    def reset_log(self) -> None:
        with self._lock:
            self._log.clear()

    def upsert(
        self, dataset: str, rows: Iterable[Row | Mapping[str, Any]], stamp: str | None = None
    ) -> str:
        """Insert or replace rows by unique key; returns the ``:updated_at`` they were given: a new
        one, or ``stamp`` if given (an old one models an upstream change that was not re-stamped,
        which a client following ``:updated_at`` cannot see)."""
        table = self._table(dataset)
        fixed = [
            _normalized(table, from_api_dict(table.name, r) if isinstance(r, Mapping) else r)
            for r in rows
        ]
        stamp = stamp or self._next_stamp()
        table.upsert(fixed, stamp)
        return stamp

    def delete(self, dataset: str, keys: Iterable[str | int]) -> int:
        return self._table(dataset).delete((str(k) for k in keys), self._next_stamp())

    def touch_all(self, dataset: str) -> str:
        """Give every row a new ``:updated_at``, as a full replace upstream does."""
        stamp = self._next_stamp()
        self._table(dataset).touch_all(stamp)
        return stamp

    def rows(self, dataset: str) -> list[Row]:
        """The rows served now, in (crash_date, unique key) order, e.g. to compare a load with."""
        table = self._table(dataset)
        with table.lock:
            return [r.row for r in table.records]

    def _table(self, dataset: str) -> _Table:
        table = self._tables[DATASET_IDS.get(dataset, dataset)]
        if not isinstance(table, _Table):
            raise TypeError(f"{dataset} is served read-only")
        return table

    def _next_stamp(self) -> str:
        with self._lock:
            self._last = max(self.now, self._last + timedelta(milliseconds=1))
            return _stamp(self._last)

    # --- request handling --------------------------------------------------------------
    def _pause(self, seconds: float) -> None:
        if seconds > 0 and self._stopping.wait(seconds):
            raise _StoppedError

    def _spend_cpu(self, seconds: float) -> None:
        """Work until this thread has used ``seconds`` of CPU time, inside the request's slot.

        The work is SHA-256 over a 64 KB block, which hashlib does without the GIL, so requests
        served at once work on every core, as a database's backends do. Counting the thread's
        own CPU clock, not the wall clock, makes a request take longer when the machine is busy.
        """
        deadline = time.thread_time() + seconds
        while time.thread_time() < deadline:
            if self._stopping.is_set():
                raise _StoppedError
            hashlib.sha256(_WORK)

    @contextmanager
    def _slot(self) -> Iterator[None]:
        if self._slots is None:
            yield
            return
        while not self._slots.acquire(timeout=0.05):
            if self._stopping.is_set():
                raise _StoppedError
        try:
            yield
        finally:
            self._slots.release()

    def _draw(self) -> tuple[str | None, random.Random]:
        with self._lock:
            fault: str | None = None
            if self._forced:
                fault = self._forced.pop(0)
            elif self._rng.random() < self.fault_rate:
                fault = self._rng.choice(self.faults)
            return fault, random.Random(self._rng.getrandbits(64))

    def _handle(self, handler: _Handler) -> None:
        with self._lock:
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
        try:
            self._answer(handler)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _answer(self, handler: _Handler) -> None:
        started = time.perf_counter()
        url = urlsplit(handler.path)
        soda3 = handler.command == "POST"
        match = (_SODA3 if soda3 else _RESOURCE).fullmatch(url.path)
        if soda3:
            options, params, clauses = _soda3_request(_read_body(handler))
        else:
            params = dict(parse_qsl(url.query, keep_blank_values=True))
            clauses = params
        if self.on_request is not None:
            self.on_request(url.path, clauses)
        try:
            with self._slot():
                self._pause(self.latency)
                fault, rng = self._draw()
                if soda3:
                    status, headers, body, rows = self._respond_soda3(
                        handler, match, options, fault, rng
                    )
                else:
                    status, headers, body, rows = self._respond(handler, match, params, fault, rng)
                if self.gzip and "gzip" in handler.headers.get("Accept-Encoding", ""):
                    # As the real service does for clients that accept it.
                    body = gzip.compress(body, compresslevel=1)
                    headers = {**headers, "Content-Encoding": "gzip"}
                if self.server_model == "cpu":
                    self._spend_cpu(self.row_cost * rows)
                else:
                    self._pause(self.row_cost * rows)
                sent = len(body) // 2 if fault == "disconnect" else len(body)
                # Logged before answering, so a client that has its answer also finds it logged.
                record = RequestRecord(
                    url.path,
                    match.group(1) if match else None,
                    params,
                    status,
                    rows,
                    sent,
                    dict(handler.headers.items()),
                    fault,
                    time.perf_counter() - started,
                    dict(clauses),
                )
                with self._lock:
                    self._log.append(record)
                handler.send_response(status)
                for name, value in headers.items():
                    handler.send_header(name, value)
                handler.send_header("Content-Length", str(len(body)))
                handler.end_headers()
                handler.wfile.write(body[:sent])
                if fault == "disconnect":
                    handler.wfile.flush()
                    handler.connection.shutdown(socket.SHUT_RDWR)
                    handler.close_connection = True
        except _StoppedError:
            handler.close_connection = True

    def _fault(self, fault: str | None) -> tuple[int, dict[str, str], bytes, int] | None:
        """The answer an injected fault gives instead of the query's, if any."""
        if fault == "slow":
            self._pause(self.slow_seconds)
        elif fault == "429":
            return _error(
                429,
                "too_many_requests",
                "Too many requests; slow down",
                {"Retry-After": self.retry_after},
            )
        elif fault not in (None, "disconnect"):
            status = int(fault)  # type: ignore[arg-type]
            code = {500: "internal_error", 503: "service_unavailable"}.get(status, "error")
            return _error(status, code, f"Injected failure {fault}")
        return None

    def _respond(
        self,
        handler: _Handler,
        match: re.Match[str] | None,
        params: dict[str, str],
        fault: str | None,
        rng: random.Random,
    ) -> tuple[int, dict[str, str], bytes, int]:
        if (failed := self._fault(fault)) is not None:
            return failed
        if self.withdrawn is not None:
            return _error(
                self.withdrawn,
                "gone" if self.withdrawn == 410 else "not_found",
                "SODA 2.x is no longer served here: POST /api/v3/views/{id}/query.json",
            )
        if match is None or match.group(1) not in self._tables:
            return _error(
                404,
                "not_found",
                f"Cannot find view with id {match.group(1) if match else handler.path}",
            )
        token = handler.headers.get("X-App-Token") or params.get("$$app_token")
        if self.app_tokens is not None and token is not None and token not in self.app_tokens:
            return _error(403, "invalid_app_token", "Invalid app_token specified")
        table, fmt = self._tables[match.group(1)], match.group(2)
        try:
            query = soql.query_from_params(params)
        except soql.SoqlError as exc:
            return _soql_error(table, exc)
        return self._run(table, fmt, query, rng)

    def _respond_soda3(
        self,
        handler: _Handler,
        match: re.Match[str] | None,
        options: Any,
        fault: str | None,
        rng: random.Random,
    ) -> tuple[int, dict[str, str], bytes, int]:
        if (failed := self._fault(fault)) is not None:
            return failed
        if match is None or match.group(1) not in self._tables:
            return _error(
                404,
                "not_found",
                f"Cannot find view with id {match.group(1) if match else handler.path}",
            )
        token = handler.headers.get("X-App-Token")
        if token is None and "Authorization" not in handler.headers:
            # dev.socrata.com/docs/queries; the status is this server's choice: the docs give none.
            return _error(
                403,
                "authentication_required",
                "Requests must be either authenticated "
                "by a user or marked with a valid application token",
            )
        if self.app_tokens is not None and token is not None and token not in self.app_tokens:
            return _error(403, "invalid_app_token", "Invalid app_token specified")
        table, fmt = self._tables[match.group(1)], match.group(2)
        try:
            query = _soda3_query(options)
        except soql.SoqlError as exc:
            return _soql_error(table, exc)
        return self._run(table, fmt, query, rng)

    def _run(
        self, table: ServedTable, fmt: str, query: soql.Query, rng: random.Random
    ) -> tuple[int, dict[str, str], bytes, int]:
        try:
            outputs, page, star = table.query(query, rng)
            if self.max_limit is not None:
                page = page[: self.max_limit]  # SODA 2.0 endpoints cap $limit silently
            names = [o.name for o in outputs]
            body = table.render(fmt, names, page, star)
        except soql.SoqlError as exc:
            return _soql_error(table, exc)
        headers = {
            "Content-Type": _CONTENT_TYPES[fmt],
            "X-SODA2-Fields": json.dumps(names, separators=(",", ":")),
            "X-SODA2-Types": json.dumps(
                ["meta_data" if o.expr in _SYSTEM_COLUMNS else o.type for o in outputs],
                separators=(",", ":"),
            ),
            "X-SODA2-Truth-Last-Modified": format_datetime(
                datetime.fromisoformat(table.last_modified[:-1] + "+00:00"), usegmt=True
            ),
        }
        return 200, headers, body, len(page)


def csv_header(names: Sequence[str]) -> str:
    return ",".join(f'"{n}"' for n in names)


def render_values(fmt: str, names: list[str], rows: Sequence[Sequence[Any]]) -> bytes:
    """The body of a page of computed values (anything but ``SELECT *``)."""
    if fmt == "csv":
        return (
            "\n".join([csv_header(names)] + [csv_line(values) for values in rows]) + "\n"
        ).encode()
    keys = [encode_basestring(n) + ":" for n in names]
    return ("[" + "\n,".join([_json_object(keys, values) for values in rows]) + "]\n").encode()


def _error(
    status: int,
    code: str,
    message: str,
    headers: Mapping[str, str] | None = None,
    data: dict[str, Any] | None = None,
) -> tuple[int, dict[str, str], bytes, int]:
    body = json.dumps({"errorCode": code, "message": message, "data": data or {}}).encode()
    return status, {"Content-Type": _CONTENT_TYPES["json"], **(headers or {})}, body, 0


def _soql_error(table: ServedTable, exc: soql.SoqlError) -> tuple[int, dict[str, str], bytes, int]:
    return _error(400, exc.code, exc.message, data={**exc.data, "dataset": f"alpha.{table.id}"})


def _read_body(handler: _Handler) -> bytes:
    """The whole request body, read before answering so that a kept-alive connection stays in
    step even when the answer is an error."""
    return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))


def _soda3_request(body: bytes) -> tuple[Any, dict[str, str], dict[str, str]]:
    """(options, what the request log keeps of them, their clauses): see RequestRecord."""
    try:
        options = json.loads(body)
    except ValueError:
        return None, {"body": body[:1000].decode(errors="replace")}, {}
    if not isinstance(options, dict):
        return options, {"body": body[:1000].decode(errors="replace")}, {}
    params = {k: v if isinstance(v, str) else json.dumps(v) for k, v in options.items()}
    statement = options.get("query")
    clauses = soql.split_statement(statement) if isinstance(statement, str) else {}
    page = options.get("page")
    if isinstance(page, dict) and isinstance(page.get("pageSize"), int):
        clauses["$limit"] = str(page["pageSize"])
        if isinstance(page.get("pageNumber"), int) and page["pageNumber"] > 1:
            clauses["$offset"] = str((page["pageNumber"] - 1) * page["pageSize"])
    return options, params, clauses


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise soql.SoqlError("query.page.invalid", f"{name} must be a whole number from 1")
    return value


def _soda3_query(options: Any) -> soql.Query:
    """The query a SODA3 body asks for, per dev.socrata.com/docs/queries and its option pages:
    ``query``, a full statement with a SELECT and no FROM; ``page``, one page of its result, which
    then comes in a stable order; ``includeSystem``, system fields in ``SELECT *``;
    ``includeSynthetic``, accepted (the generated datasets have no synthetic columns)."""
    if not isinstance(options, dict) or not isinstance(options.get("query"), str):
        raise soql.SoqlError("query.options.invalid", "The body must be a JSON object with a query")
    if unknown := set(options) - _SODA3_OPTIONS:
        raise soql.SoqlError("query.options.invalid", f"Unrecognized option {sorted(unknown)[0]}")
    for flag in ("includeSystem", "includeSynthetic"):
        if not isinstance(options.get(flag, False), bool):
            raise soql.SoqlError("query.options.invalid", f"{flag} must be true or false")
    statement, page = options["query"], options.get("page")
    if not re.match(r"\s*select\b", statement, re.I):
        raise soql.SoqlError("query.soql.malformed", "A SoQL statement must have a SELECT clause")
    if page is None:
        query = soql.parse_statement(statement)
    else:
        if not isinstance(page, dict) or set(page) != {"pageNumber", "pageSize"}:
            raise soql.SoqlError("query.page.invalid", "page needs pageNumber and pageSize")
        number = _count(page["pageNumber"], "pageNumber")
        size = _count(page["pageSize"], "pageSize")
        # The page is a window on the statement's whole result, whatever its own LIMIT.
        query = soql.parse_statement(statement, default_limit=sys.maxsize)
        skip = (number - 1) * size
        query.offset += skip
        query.limit = max(0, min(query.limit - skip, size))
        grouped = bool(query.group) or any(_is_aggregate(i.expr) for i in query.select)
        if not query.order and not grouped:
            # docs/queries/page: "we also impose an ordering upon the results".
            query.order = [(soql.Column(":id"), False)]
    if options.get("includeSystem") and any(item.star == "*" for item in query.select):
        query.select = [*query.select, soql.SelectItem(None, star=":*")]
    return query


def _initial_stamp() -> Callable[[Any], str]:
    """Rows loaded at start count as published at 06:00 UTC the morning after their crash."""
    cache: dict[Any, str] = {}

    def stamp_of(crash_date: Any) -> str:
        if crash_date not in cache:
            day = date.fromisoformat(crash_date[:10]) if crash_date else _EPOCH.date()
            cache[crash_date] = _stamp(
                datetime.combine(day, datetime.min.time()) + timedelta(days=1, hours=6)
            )
        return cache[crash_date]

    return stamp_of


def _normalized(table: _Table, row: Row) -> Row:
    if len(row) != len(table.fields):
        raise ValueError(f"a {table.name} row has {len(table.fields)} fields, not {len(row)}")
    return tuple(
        soql.normalize_timestamp(v) or v if t in soql.TIMESTAMP_TYPES and isinstance(v, str) else v
        for v, t in zip(row, table.types)
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", type=date.fromisoformat, help="first crash_date to generate")
    parser.add_argument("--end", type=date.fromisoformat, help="day after the last crash_date")
    parser.add_argument("--datasets", default="crashes,persons,vehicles")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--crashes-per-day", default="250,700", help="MIN,MAX generated a day")
    parser.add_argument(
        "--spool",
        type=Path,
        help="serve the generated rows from files in this "
        "folder, read-only: for more rows than memory holds (spooled_table.py)",
    )
    parser.add_argument("--real-data", action="store_true", help="serve the real rows instead")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--row-cost", type=float, default=0.0, help="seconds per row served")
    parser.add_argument(
        "--server-model",
        choices=SERVER_MODELS,
        default="sleep",
        help="spend --row-cost waiting (sleep) or as CPU work (cpu)",
    )
    parser.add_argument("--max-concurrent", type=int)
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--faults", default=",".join(FAULTS))
    parser.add_argument("--retry-after", default="1", help="Retry-After of injected 429s")
    parser.add_argument("--slow-seconds", type=float, default=5.0)
    parser.add_argument("--app-token", action="append", dest="app_tokens")
    args = parser.parse_args(argv)
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    if args.real_data and (args.start or args.end):
        parser.error("--real-data serves only the real rows; drop --start/--end")
    if args.real_data and not real_data.available():
        parser.error(f"no real data in {real_data.SHARED_DATA}")
    if not args.real_data and not (args.start and args.end):
        parser.error("give --start and --end, or --real-data")
    low, high = (int(n) for n in args.crashes_per_day.split(","))
    rows: Mapping[str, Sequence[Row]] = {}
    tables: list[ServedTable] = []
    if args.real_data:
        rows = {k: v for k, v in real_data.load_all().items() if k in datasets}
    elif args.spool:
        # Imported here: the spooled table builds on this module.
        from nyc_collisions_dagster_tests.soda_fake.spooled_table import spool_generated

        tables += spool_generated(
            args.spool,
            args.start,
            args.end,
            datasets,
            workers=os.cpu_count() or 1,
            seed=args.seed,
            crashes_per_day=(low, high),
        )
    else:
        rows = generate(
            args.start, args.end, seed=args.seed, datasets=datasets, crashes_per_day=(low, high)
        )
    server = SodaServer(
        rows,
        port=args.port,
        latency=args.latency,
        row_cost=args.row_cost,
        max_concurrent=args.max_concurrent,
        fault_rate=args.fault_rate,
        faults=args.faults.split(","),
        retry_after=args.retry_after,
        slow_seconds=args.slow_seconds,
        app_tokens=args.app_tokens,
        seed=args.seed,
        server_model=args.server_model,
        tables=tables,
    )
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    with server:
        print(f"SODA server listening on {server.url}", flush=True)
        while not done.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    os._exit(status)  # the server is stopped; skip freeing millions of rows one by one
