"""Stripe's Search Query Language, for ``/v1/payment_intents/search`` and ``/v1/customers/search``.

Supported: clauses ``field:value`` (equality; ``~`` for substring), ``field>value`` / ``<`` / ``>=`` / ``<=`` for
numbers, ``metadata['key']:'value'``, ``-`` negation, ``null`` values, joined all by ``AND`` or all by ``OR``
(Stripe does not allow mixing them).  Real Stripe indexes with a delay of up to a minute; the sandbox answers
from the current state at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sandbox.stripe_sim.errors import StripeError, invalid_request

__all__ = ["compile_query"]

_CLAUSE = re.compile(
    r"""\s*(?P<neg>-)?
    (?P<field>metadata\[(?P<q1>['"])(?P<mkey>[^'"]+)(?P=q1)\]|[a-z_]+)
    \s*(?P<op>:|>=|<=|>|<|~)\s*
    (?:(?P<q2>['"])(?P<sval>(?:\\.|(?!(?P=q2)).)*)(?P=q2)|(?P<num>-?\d+)|(?P<null>null))\s*""",
    re.VERBOSE,
)
_JOIN = re.compile(r"\s+(AND|OR)\s+")

Predicate = Callable[[dict[str, Any]], bool]


def _bad(query: str, why: str) -> StripeError:
    return invalid_request(f"Invalid search query: {why} (query: {query!r})", param="query")


def compile_query(query: str, fields: frozenset[str]) -> Predicate:
    """A predicate for the objects ``query`` selects.

    ``fields`` lists the searchable top-level fields (``metadata[...]`` is always searchable).
    Raises StripeError (400, param ``query``) for a query outside the supported language.
    """
    if not query or not query.strip():
        raise _bad(query, "empty query")
    predicates: list[Predicate] = []
    joiners: set[str] = set()
    pos = 0
    while True:
        match = _CLAUSE.match(query, pos)
        if match is None:
            raise _bad(query, f"cannot parse at position {pos}")
        predicates.append(_clause(match, fields, query))
        pos = match.end()
        if pos >= len(query):
            break
        join = _JOIN.match(query, pos - 1 if query[pos - 1].isspace() else pos)
        if join is None:
            raise _bad(query, f"expected AND or OR at position {pos}")
        joiners.add(join.group(1))
        pos = join.end()
    if len(joiners) > 1:
        raise _bad(query, "AND and OR cannot be combined in one query")
    if joiners == {"OR"}:
        return lambda obj: any(p(obj) for p in predicates)
    return lambda obj: all(p(obj) for p in predicates)


def _clause(match: re.Match[str], fields: frozenset[str], query: str) -> Predicate:
    negate = match.group("neg") is not None
    op = match.group("op")
    mkey = match.group("mkey")
    field = match.group("field")
    if mkey is None and field not in fields:
        raise _bad(query, f"field {field!r} is not searchable")
    value: Any
    if match.group("null") is not None:
        value = None
    elif match.group("num") is not None:
        value = int(match.group("num"))
    else:
        value = re.sub(r"\\(.)", r"\1", match.group("sval"))
    if op in (">", "<", ">=", "<=") and not isinstance(value, int):
        raise _bad(query, f"{op} needs a number")

    def get(obj: dict[str, Any]) -> Any:
        if mkey is not None:
            return (obj.get("metadata") or {}).get(mkey)
        return obj.get(field)

    def test(obj: dict[str, Any]) -> bool:
        actual = get(obj)
        if op == ":":
            if value is None:
                result = actual in (None, "")
            elif isinstance(value, int) and isinstance(actual, int):
                result = actual == value
            else:
                result = actual is not None and str(actual).lower() == str(value).lower()
        elif op == "~":
            result = actual is not None and str(value).lower() in str(actual).lower()
        else:
            if not isinstance(actual, int):
                result = False
            elif op == ">":
                result = actual > value
            elif op == "<":
                result = actual < value
            elif op == ">=":
                result = actual >= value
            else:
                result = actual <= value
        return result != negate

    return test
