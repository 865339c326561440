"""SODA3 requests: one SoQL statement POSTed as JSON to /api/v3/views/{id}/query.{json,csv}.

The project writes each query once, as SODA 2.1 parameters ($select, $where, ...); this module
gives it the form SODA3 asks for, so that both transports run the same query. Sources, on
dev.socrata.com: docs/queries ("Queries using SODA3": POST, app token, /query and /export),
docs/queries/query (the statement), docs/queries/page, docs/formats (CSV and JSON on 3.0),
docs/app-tokens.
"""

import re
from collections.abc import Mapping

APP_TOKEN_DOCS = "https://dev.socrata.com/docs/app-tokens"
# A SODA 2.1 request answered with one of these may mean that /resource/ is gone: HTTP's
# "Gone", and the 404 of an endpoint taken away. dev.socrata.com/docs/response-codes documents no
# status of its own for a withdrawn API.
WITHDRAWN_STATUSES = frozenset({404, 410})

# docs/queries/query: "A SoQL statement must have a SELECT clause"; there is no FROM, "because
# queries occur in the context of a view".
_CLAUSES = (("$where", "WHERE"), ("$group", "GROUP BY"), ("$order", "ORDER BY"))
_PARAMETERS = frozenset({"$select", "$limit", *(name for name, _ in _CLAUSES)})
_KEYWORDS = frozenset("and or not is null as between in like true false asc desc".split())
# String literals, names already in backquotes, names (system fields start with a colon),
# numbers, then anything else one character at a time: together they cover the whole text.
_TOKENS = re.compile(r"'(?:[^']|'')*'|`[^`]*`|:?[A-Za-z_@][A-Za-z0-9_@]*|\d+(?:\.\d*)?|.", re.S)


def query_path(dataset_id: str, fmt: str) -> str:
    """docs/queries: "/query for querying"; docs/formats lists CSV and JSON for 3.0. /export is
    not used: it takes no page (docs/queries), so a window could not be read one page at a time."""
    return f"/api/v3/views/{dataset_id}/query.{fmt}"


def request_body(params: Mapping[str, str]) -> dict[str, object]:
    """The JSON body of a SODA3 query equal to the SODA 2.1 request `params`."""
    if unknown := set(params) - _PARAMETERS:
        raise ValueError(f"no SODA3 form for the SODA 2.1 parameters {sorted(unknown)}")
    statement = f"SELECT {_backquoted(params.get('$select') or '*')}"
    for name, keyword in _CLAUSES:
        if params.get(name):
            statement += f" {keyword} {_backquoted(params[name])}"
    body: dict[str, object] = {
        "query": statement,
        # On SODA 2.1, SELECT * sends neither system fields (:id, :updated_at) nor synthetic
        # columns: asking for neither keeps the rows, and the CSV header, the same on both.
        "includeSystem": False,
        "includeSynthetic": False,
    }
    if "$limit" in params:
        # Always page 1: docs/queries/page warns that performance "will decrease drastically"
        # as the page number rises and advises filters instead. Paging is a keyset in the WHERE.
        body["page"] = {"pageNumber": 1, "pageSize": int(params["$limit"])}
    return body


def _backquoted(expression: str) -> str:
    """Column names in backquotes, as docs/queries/query recommends; keywords, functions,
    literals and system fields (:updated_at, which the docs write bare) as they are."""
    tokens = _TOKENS.findall(expression)
    out = []
    for i, token in enumerate(tokens):
        following = next((t for t in tokens[i + 1 :] if not t.isspace()), "")
        is_name = token[0].isalpha() or token[0] == "_"
        if is_name and token.lower() not in _KEYWORDS and following != "(":
            token = f"`{token}`"
        out.append(token)
    return "".join(out)


def token_required(host: str) -> str:
    """Why a SODA3 client cannot start without an app token, and where to get one."""
    return (
        f"SODA3 needs an app token (dev.socrata.com/docs/queries: requests must be authenticated "
        f"or carry a valid application token), and none is set: set SOCRATA_APP_TOKEN, or the "
        f"socrata resource's app_token. Register one, free, in your Socrata profile on {host} "
        f"(Developer Settings): {APP_TOKEN_DOCS}"
    )
