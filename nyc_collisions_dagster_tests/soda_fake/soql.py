"""A small SoQL parser and evaluator: enough of Socrata's query language for the test server.

Expressions compile to closures over a stored record. Values stay the strings the API sends;
comparisons convert per column type (numbers numerically, timestamps as normalised ISO text),
and comparisons with an absent value yield ``None`` (SQL's unknown), which filters the row out.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NoReturn

Getter = Callable[[Any], Any]


class SoqlError(Exception):
    """A query the real API would reject with HTTP 400; carries its errorCode and data."""

    def __init__(self, code: str, message: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data or {}


# --- syntax tree -------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    name: str


@dataclass(frozen=True)
class Literal:
    value: str | float | bool | None


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Node, ...]
    star: bool = False  # count(*)


@dataclass(frozen=True)
class Op:
    """Any operator: comparisons, and/or/not, is null, between, in, like (``negated`` for NOT)."""

    op: str
    args: tuple[Node, ...]
    negated: bool = False


Node = Column | Literal | Call | Op


@dataclass(frozen=True)
class SelectItem:
    expr: Node | None  # None for a star
    alias: str | None = None
    star: str | None = None  # "*" (dataset fields) or ":*" (system fields)


@dataclass
class Query:
    select: list[SelectItem] = field(default_factory=lambda: [SelectItem(None, star="*")])
    where: Node | None = None
    group: list[Node] = field(default_factory=list)
    order: list[tuple[Node, bool]] = field(default_factory=list)  # (expression, descending)
    limit: int = 1000
    offset: int = 0


# --- parsing -----------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
    (?P<num>\d+(?:\.\d*)?|\.\d+)
  | (?P<str>'(?:[^']|'')*'|"(?:[^"]|"")*")
  | (?P<ident>:?[A-Za-z_@][A-Za-z0-9_]*|`[^`]+`)
  | (?P<op><>|!=|<=|>=|:\*|[=<>(),*-])
  )""",
    re.X,
)
_COMPARISONS = {"=", "!=", "<>", "<", "<=", ">", ">="}


class _Parser:
    def __init__(self, text: str) -> None:
        self.text, self.tokens, pos = text, [], 0
        while text[pos:].strip():
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                self.fail(f"unexpected character {text[pos:].lstrip()[:1]!r}", pos)
            kind = m.lastgroup or ""
            self.tokens.append((kind, m.group(kind), m.start(kind)))
            pos = m.end()
        self.tokens.append(("end", "", len(text)))
        self.i = 0

    def fail(self, message: str, pos: int | None = None) -> NoReturn:
        pos = self.tokens[self.i][2] if pos is None else pos
        raise SoqlError(
            "query.compiler.malformed",
            f'Could not parse SoQL query "{self.text}" at character {pos + 1}: {message}',
            {"position": pos + 1},
        )

    def kw(self, *words: str) -> bool:
        kind, text, _ = self.tokens[self.i]
        found = kind == "ident" and text.lower() in words
        self.i += found
        return found

    def expect_kw(self, word: str) -> None:
        if not self.kw(word):
            self.fail(f"expected {word.upper()}")

    def op(self, *ops: str) -> str | None:
        kind, text, _ = self.tokens[self.i]
        if kind == "op" and text in ops:
            self.i += 1
            return text
        return None

    def expect_op(self, op: str) -> None:
        if not self.op(op):
            self.fail(f"expected '{op}'")

    def finish(self) -> None:
        if self.tokens[self.i][0] != "end":
            self.fail(f"unexpected {self.tokens[self.i][1]!r}")

    def expr(self) -> Node:
        node = self.conjunction()
        while self.kw("or"):
            node = Op("or", (node, self.conjunction()))
        return node

    def conjunction(self) -> Node:
        node = self.negation()
        while self.kw("and"):
            node = Op("and", (node, self.negation()))
        return node

    def negation(self) -> Node:
        return Op("not", (self.negation(),)) if self.kw("not") else self.predicate()

    def predicate(self) -> Node:
        left = self.primary()
        if cmp := self.op(*_COMPARISONS):
            return Op("!=" if cmp == "<>" else cmp, (left, self.primary()))
        if self.kw("is"):
            negated = self.kw("not")
            self.expect_kw("null")
            return Op("is null", (left,), negated)
        negated = self.kw("not")
        if self.kw("between"):
            low = self.primary()
            self.expect_kw("and")
            return Op("between", (left, low, self.primary()), negated)
        if self.kw("in"):
            self.expect_op("(")
            options = self.expr_list()
            self.expect_op(")")
            return Op("in", (left, *options), negated)
        if self.kw("like"):
            return Op("like", (left, self.primary()), negated)
        if negated:
            self.fail("expected BETWEEN, IN or LIKE after NOT")
        return left

    def primary(self) -> Node:
        kind, text, _ = self.tokens[self.i]
        self.i += 1
        if kind == "num":
            return Literal(float(text))
        if kind == "op" and text == "-" and self.tokens[self.i][0] == "num":
            self.i += 1
            return Literal(-float(self.tokens[self.i - 1][1]))
        if kind == "str":
            return Literal(text[1:-1].replace(text[0] * 2, text[0]))
        if kind == "op" and text == "(":
            node = self.expr()
            self.expect_op(")")
            return node
        if kind == "ident":
            word = text.lower()
            if word in ("true", "false", "null"):
                return Literal({"true": True, "false": False, "null": None}[word])
            if self.op("("):
                if self.op("*"):
                    self.expect_op(")")
                    return Call(word, (), star=True)
                args = () if self.op(")") else self.expr_list()
                if args:
                    self.expect_op(")")
                return Call(word, tuple(args))
            return Column(text.strip("`"))
        self.i -= 1
        self.fail("expected a column, literal or function" if kind != "end" else "unexpected end")

    def expr_list(self) -> list[Node]:
        items = [self.expr()]
        while self.op(","):
            items.append(self.expr())
        return items

    def select_list(self) -> list[SelectItem]:
        items = []
        while True:
            if star := self.op("*", ":*"):
                items.append(SelectItem(None, star=star))
            else:
                node = self.expr()
                alias = None
                if self.kw("as"):
                    kind, alias, _ = self.tokens[self.i]
                    if kind != "ident":
                        self.fail("expected an alias after AS")
                    self.i += 1
                items.append(SelectItem(node, alias.strip("`") if alias else None))
            if not self.op(","):
                return items

    def order_list(self) -> list[tuple[Node, bool]]:
        items = []
        while True:
            node = self.expr()
            desc = self.kw("desc")
            if not desc:
                self.kw("asc")
            items.append((node, desc))
            if not self.op(","):
                return items

    def integer(self) -> int:
        kind, text, _ = self.tokens[self.i]
        if kind != "num" or not text.isdigit():
            self.fail("expected a non-negative integer")
        self.i += 1
        return int(text)


def _parse(text: str, rule: Callable[[_Parser], Any]) -> Any:
    parser = _Parser(text)
    result = rule(parser)
    parser.finish()
    return result


def parse_statement(text: str, default_limit: int = 1000) -> Query:
    """A full ``$query`` statement: SELECT ... WHERE ... GROUP BY ... ORDER BY ... LIMIT/OFFSET."""
    p, q = _Parser(text), Query(limit=default_limit)
    if p.kw("select"):
        q.select = p.select_list()
    if p.kw("where"):
        q.where = p.expr()
    if p.kw("group"):
        p.expect_kw("by")
        q.group = p.expr_list()
    if p.kw("order"):
        p.expect_kw("by")
        q.order = p.order_list()
    if p.kw("limit"):
        q.limit = p.integer()
    if p.kw("offset"):
        q.offset = p.integer()
    p.finish()
    return q


_CLAUSE = re.compile(
    r"'(?:[^']|'')*'|`[^`]*`"
    r"|\b(select|where|group\s+by|having|order\s+by|limit|offset)\b",
    re.I,
)


def split_statement(text: str) -> dict[str, str]:
    """A statement's clauses as SODA 2.1 parameters (``{"$where": "a > 1", ...}``), names without
    their backquotes: one shape for the requests of both transports, as tests read them."""
    clauses: dict[str, str] = {}
    name, start = None, 0
    for m in _CLAUSE.finditer(text):
        if m.group(1) is None:  # a literal or a quoted name
            continue
        if name:
            clauses[name] = text[start : m.start()].strip()
        name, start = "$" + m.group(1).split()[0].lower(), m.end()
    if name:
        clauses[name] = text[start:].strip()
    return {k: v.replace("`", "") for k, v in clauses.items()}


def query_from_params(params: Mapping[str, str]) -> Query:
    """Build the query of a request from its ``$`` parameters and ``field=value`` filters."""
    soql = {k: v for k, v in params.items() if k.startswith("$") and not k.startswith("$$")}
    if "$query" in soql:
        extra = set(soql) - {"$query", "$q"}
        if extra:
            raise SoqlError("query.soql.invalid", f"$query cannot be combined with {sorted(extra)}")
        return parse_statement(soql["$query"])
    unknown = set(soql) - {"$select", "$where", "$order", "$group", "$limit", "$offset", "$q"}
    if unknown:
        raise SoqlError("query.soql.invalid", f"Unrecognized parameter {sorted(unknown)[0]}")
    q = Query()
    if soql.get("$select", "").strip():
        q.select = _parse(soql["$select"], _Parser.select_list)
    where = [_parse(soql["$where"], _Parser.expr)] if soql.get("$where", "").strip() else []
    where += [Op("=", (Column(k), Literal(v))) for k, v in params.items() if not k.startswith("$")]
    for extra in where:
        q.where = extra if q.where is None else Op("and", (q.where, extra))
    if soql.get("$group", "").strip():
        q.group = _parse(soql["$group"], _Parser.expr_list)
    if soql.get("$order", "").strip():
        q.order = _parse(soql["$order"], _Parser.order_list)
    q.limit = _parse(soql["$limit"], _Parser.integer) if "$limit" in soql else q.limit
    q.offset = _parse(soql["$offset"], _Parser.integer) if "$offset" in soql else q.offset
    return q


# --- evaluation --------------------------------------------------------------------------

_TIMESTAMP = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)(?:[T ](\d\d):(\d\d)(?::(\d\d)(?:\.(\d+))?)?)?"
    r"(Z|[+-]\d\d:?\d\d)?"
)
TIMESTAMP_TYPES = ("floating_timestamp", "fixed_timestamp")
AGGREGATES = ("count", "min", "max", "sum", "avg")


def normalize_timestamp(text: str, fixed: bool = False) -> str | None:
    """ISO text as stored: ``2024-01-01T00:00:00.000`` (``Z``-suffixed, in UTC, when fixed)."""
    m = _TIMESTAMP.fullmatch(text.strip())
    if not m:
        return None
    y, mo, d, h, mi, s, frac, zone = m.groups()
    try:
        value = datetime(
            int(y),
            int(mo),
            int(d),
            int(h or 0),
            int(mi or 0),
            int(s or 0),
            int((frac or "0")[:6].ljust(6, "0")),
        )
        if zone and fixed:
            offset = datetime.fromisoformat("2000-01-01T00:00:00" + zone.replace("Z", "+00:00"))
            value = value.replace(tzinfo=offset.tzinfo).astimezone(UTC).replace(tzinfo=None)
    except ValueError:
        return None
    return value.isoformat(timespec="milliseconds") + ("Z" if fixed else "")


def to_number(value: Any) -> float | None:
    return None if value is None else float(value)


def sort_key(kind: str) -> Getter:
    return to_number if kind == "number" else lambda v: v


def format_number(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)


@dataclass(frozen=True)
class Compiled:
    fn: Getter
    type: str
    constant: bool = False


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_MIRROR = {"=": "=", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_TRUNCATE = {"date_trunc_ymd": 10, "date_trunc_ym": 7, "date_trunc_y": 4}
_PAD = "0000-01-01T00:00:00.000"


def default_name(node: Node) -> str:
    """The output key the real API gives an unaliased expression (``count``, ``max_crash_date``)."""
    if isinstance(node, Column):
        return node.name
    if isinstance(node, Call):
        if node.star:
            return "count"
        return "_".join([node.name, *(default_name(a).lstrip(":") for a in node.args)])
    return "_expr"


class Schema:
    """Column getters and SODA types of a dataset, and the compiler of expressions over it."""

    def __init__(self, columns: Mapping[str, tuple[Getter, str]], dataset: str) -> None:
        self.columns, self.dataset = columns, dataset

    def column(self, name: str) -> Compiled:
        if name not in self.columns:
            raise SoqlError(
                "query.soql.no-such-column",
                f"No such column: {name}",
                {"column": name, "dataset": self.dataset},
            )
        getter, kind = self.columns[name]
        return Compiled(getter, kind)

    def compile(self, node: Node) -> Compiled:
        if isinstance(node, Column):
            return self.column(node.name)
        if isinstance(node, Literal):
            value = node.value
            kind = {str: "text", float: "number", bool: "boolean"}.get(type(value), "null")
            return Compiled(lambda r: value, kind, constant=True)
        if isinstance(node, Call):
            return self._call(node)
        return self._op(node)

    def _call(self, node: Call) -> Compiled:
        if node.name in AGGREGATES:
            raise SoqlError(
                "query.soql.aggregate-in-ungrouped-context",
                f"Aggregate {node.name}() is only allowed in $select or $order",
            )
        args = [self.compile(a) for a in node.args]
        if node.name in _TRUNCATE and len(args) == 1 and args[0].type in TIMESTAMP_TYPES:
            f, n = args[0].fn, _TRUNCATE[node.name]
            return Compiled(
                lambda r: None if (v := f(r)) is None else v[:n] + _PAD[n:], "floating_timestamp"
            )
        if node.name in ("upper", "lower") and len(args) == 1 and args[0].type == "text":
            f, method = args[0].fn, getattr(str, node.name)
            return Compiled(lambda r: None if (v := f(r)) is None else method(v), "text")
        raise SoqlError(
            "query.soql.no-such-function",
            f"No such function '{node.name}' for these {len(args)} argument(s)",
        )

    def _operand(self, node: Node, kind: str) -> Compiled:
        """Compile the other side of a comparison, reading a literal as a value of ``kind``."""
        compiled = self.compile(node)
        if compiled.type in (kind, "null"):
            return compiled
        value = node.value if isinstance(node, Literal) else None
        converted: Any = None
        if isinstance(value, str) and kind == "number":
            with suppress(ValueError):
                converted = float(value)
        elif isinstance(value, str) and kind in TIMESTAMP_TYPES:
            converted = normalize_timestamp(value, kind == "fixed_timestamp")
        if converted is None:
            shown = repr(value) if isinstance(node, Literal) else compiled.type
            raise SoqlError(
                "query.soql.type-mismatch", f"Type mismatch: cannot compare {kind} with {shown}"
            )
        return Compiled(lambda r: converted, kind, constant=True)

    def _op(self, node: Op) -> Compiled:
        name, args, negated = node.op, node.args, node.negated
        if name in ("and", "or", "not"):
            return Compiled(_logic(name, [self.compile(a).fn for a in args]), "boolean")
        if name in _MIRROR and isinstance(args[0], Literal) and not isinstance(args[1], Literal):
            name, args = _MIRROR[name], (args[1], args[0])  # '2024-01-01' <= crash_date
        subject = self.compile(args[0])
        if name == "is null":
            f = subject.fn
            return Compiled(lambda r: (f(r) is None) != negated, "boolean")
        others = [self._operand(a, subject.type) for a in args[1:]]
        key, f = sort_key(subject.type), subject.fn
        if not all(o.constant for o in others):
            if name not in _OPS:
                raise SoqlError("query.soql.type-mismatch", f"{name.upper()} needs literal values")
            compare, g = _OPS[name], others[0].fn
            return Compiled(
                lambda r: (
                    None if (v := f(r)) is None or (w := g(r)) is None else compare(key(v), key(w))
                ),
                "boolean",
            )
        values = [o.fn(None) for o in others]
        if None in values and name != "in":
            return Compiled(lambda r: None, "boolean")  # comparing with NULL is unknown
        if name == "in":
            options = {key(v) for v in values if v is not None}
            test: Getter = lambda v: key(v) in options  # noqa: E731
        elif name == "between":
            low, high = key(values[0]), key(values[1])
            test = lambda v: low <= key(v) <= high  # noqa: E731
        elif name == "like" and subject.type == "text":
            pattern = re.compile(
                "".join(
                    ".*" if ch == "%" else "." if ch == "_" else re.escape(ch)
                    for ch in str(values[0])
                ),
                re.S,
            )
            test = lambda v: pattern.fullmatch(v) is not None  # noqa: E731
        elif name in _OPS:
            compare, c = _OPS[name], key(values[0])
            test = lambda v: compare(key(v), c)  # noqa: E731
        else:
            raise SoqlError(
                "query.soql.type-mismatch", f"{name.upper()} is not defined for {subject.type}"
            )
        return Compiled(
            _negate(lambda r: None if (v := f(r)) is None else test(v), negated), "boolean"
        )


def _negate(fn: Getter, negated: bool) -> Getter:
    return (lambda r: None if (v := fn(r)) is None else not v) if negated else fn


def _logic(name: str, parts: list[Getter]) -> Getter:
    if name == "not":
        return _negate(parts[0], True)
    a, b = parts
    stop = name == "or"  # the value that decides the result on its own

    def fn(r: Any) -> bool | None:
        x = a(r)
        if x is stop:
            return stop
        y = b(r)
        if y is stop:
            return stop
        return None if x is None or y is None else not stop

    return fn


def aggregate(call: Call, kind: str, values: Sequence[Any]) -> str | None:
    """An aggregate over a group's raw values (of type ``kind``), as the API string."""
    if call.name == "count":
        return str(len(values) if call.star else sum(v is not None for v in values))
    present = [v for v in values if v is not None]
    if not present:
        return None
    if call.name in ("min", "max"):
        pick = min if call.name == "min" else max
        return pick(present, key=float) if kind == "number" else pick(present)
    if kind != "number":
        raise SoqlError(
            "query.soql.type-mismatch", f"{call.name}() needs a number column, not {kind}"
        )
    total = sum(float(v) for v in present)
    return format_number(total if call.name == "sum" else total / len(present))


def sort_rows(rows: list[Any], keys: Sequence[tuple[Getter, str, bool]]) -> None:
    """Sort in place by (getter, type, descending) keys: nulls last ascending, first descending."""
    for getter, kind, desc in reversed(keys):
        convert = sort_key(kind)
        rows.sort(
            key=lambda r: (1, 0) if (v := getter(r)) is None else (0, convert(v)), reverse=desc
        )
