"""``$filter`` of the SensorThings API: OData text -> AST (the ``odata-query`` parser) -> parameterised SQL.

The parser gives a syntax tree; this module walks it and writes a SQL condition in which every value is a
``%(pN)s`` placeholder and every column, operator and function comes from a fixed table here. A property the
entity does not have, a function not listed in :data:`FUNCTIONS`, or two operands of different types is a
:class:`QueryError` (an HTTP 400), never SQL the database could refuse with a 500. Size and nesting are
bounded like the CQL2 filters of the OGC API (:mod:`cityos.gis.filters`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from odata_query import ast
from odata_query import exceptions as odata_errors
from odata_query.grammar import ODATA_FUNCTIONS, ODataLexer, ODataParser

from cityos.gis.filters import MAX_FILTER_CHARS, MAX_FILTER_DEPTH, text_depth

#: Most nodes of a parsed tree (operands, operators, calls): a long flat chain of ``and`` is not nested, but it
#: is still work for the translator and the database.
MAX_NODES = 400
#: Deepest parse tree (a chain ``a and b and c ...`` is a tree as deep as it is long).
MAX_TREE_DEPTH = 4 * MAX_FILTER_DEPTH
#: Most ``/`` of navigation paths in one filter (the parser splits paths recursively).
MAX_PATH_SEGMENTS = 64

NUMBER, TEXT, TIME, DATE, BOOL, GEOM, NULL = "number", "text", "time", "date", "bool", "geometry", "null"


class QueryError(ValueError):
    """A query option cannot be read or asks for something this service does not offer (an HTTP 400)."""


#: Where a condition goes inside the ``exists (...)`` of a path across a to-many relation.
HOLE = "\x00"
#: Most values in one ``in (...)`` list.
MAX_IN_VALUES = 400


@dataclass
class Expr:
    """A SQL expression and its type; ``scope``, for a value reached across a to-many relation
    (``Datastreams/name`` of a Thing), is the ``exists (select 1 from ... where ... and HOLE)`` the condition made
    of it goes into: the condition holds if it holds for any of the related entities (FROST's reading)."""

    sql: str
    type: str
    scope: str | None = None


def _scope_of(*exprs: Expr) -> str | None:
    scopes = {e.scope for e in exprs if e.scope}
    if len(scopes) > 1:
        raise QueryError("one comparison or function may follow one to-many path (such as Datastreams/name), "
                         "not two; join two conditions with and/or instead")
    return scopes.pop() if scopes else None


def condition(sql: str, *exprs: Expr) -> Expr:
    """The condition ``sql`` made of ``exprs``: inside the ``exists`` of their to-many path, if they have one."""
    scope = _scope_of(*exprs)
    return Expr(scope.replace(HOLE, sql) if scope else sql, BOOL)


def value(sql: str, kind: str, *exprs: Expr) -> Expr:
    """The value ``sql`` made of ``exprs``, keeping their to-many path for the condition it ends up in."""
    return Expr(sql, kind, _scope_of(*exprs))


@dataclass
class Params:
    """The values of the placeholders of one statement (names ``p0``, ``p1`` ...)."""

    values: dict[str, object] = field(default_factory=dict)

    def add(self, value: object, cast: str) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"%({name})s::{cast}"


#: The resolver of property paths: ``["Datastream", "id"]`` -> an expression over the entity's row, or None.
Resolver = Callable[[list[str]], Expr | None]

CASTS = {NUMBER: "float8", TEXT: "text", TIME: "timestamptz", DATE: "date", BOOL: "boolean"}
COMPARATORS = {ast.Eq: "=", ast.NotEq: "<>", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
ARITHMETIC = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
SPATIAL = {"geo.intersects": "st_intersects", "st_equals": "st_equals", "st_disjoint": "st_disjoint",
           "st_touches": "st_touches", "st_within": "st_within", "st_overlaps": "st_overlaps",
           "st_crosses": "st_crosses", "st_intersects": "st_intersects", "st_contains": "st_contains"}
DATE_PARTS = {"year": "year", "month": "month", "day": "day", "hour": "hour", "minute": "minute",
              "second": "second"}

#: Functions of fixed argument types written as one SQL template over their arguments' SQL:
#: name -> (argument types, template, result type).
FIXED: dict[str, tuple[tuple[str, ...], str, str]] = {
    **{name: ((GEOM, GEOM), f"{function}({{0}}, {{1}})", BOOL) for name, function in SPATIAL.items()},
    "geo.distance": ((GEOM, GEOM), "st_distance({0}, {1})", NUMBER),
    "geo.length": ((GEOM,), "st_length({0})", NUMBER),
    "contains": ((TEXT, TEXT), "(strpos({0}, {1}) > 0)", BOOL),
    "substringof": ((TEXT, TEXT), "(strpos({1}, {0}) > 0)", BOOL),
    "startswith": ((TEXT, TEXT), "starts_with({0}, {1})", BOOL),
    "endswith": ((TEXT, TEXT), "(right({0}, length({1})) = {1})", BOOL),
    "length": ((TEXT,), "length({0})::float8", NUMBER),
    "indexof": ((TEXT, TEXT), "(strpos({0}, {1}) - 1)::float8", NUMBER),
    "concat": ((TEXT, TEXT), "({0} || {1})", TEXT),
    "date": ((TIME,), "({0} at time zone 'UTC')::date", DATE),
}

# The STA functions the OData grammar does not know (argument counts are checked by the parser).
ODATA_FUNCTIONS.update({name: 2 for name in SPATIAL if name.startswith("st_")} | {"substringof": 2})


@functools.lru_cache(maxsize=256)
def parse(text: str) -> ast._Node:
    """The syntax tree of a ``$filter`` text, within the size and nesting bounds (the trees are immutable, so
    the last few hundred texts are kept: clients paging through a Datastream send the same filter each time,
    and the grammar's parser costs more than the page's query)."""
    if len(text) > MAX_FILTER_CHARS:
        raise QueryError(f"$filter is longer than {MAX_FILTER_CHARS} characters")
    if text_depth(text) > MAX_FILTER_DEPTH:
        raise QueryError(f"$filter nests deeper than {MAX_FILTER_DEPTH} levels (parentheses and not)")
    if re.sub(r"'(?:[^']|'')*'", "", text).count("/") > MAX_PATH_SEGMENTS:
        raise QueryError(f"$filter has more than {MAX_PATH_SEGMENTS} path segments")
    try:
        tree = ODataParser().parse(ODataLexer().tokenize(text))
    except odata_errors.ODataException as exc:
        raise QueryError(f"cannot read $filter: {str(exc)[:300]}") from None
    except (ValueError, TypeError, IndexError, KeyError, AttributeError) as exc:
        raise QueryError(f"cannot read $filter ({type(exc).__name__})") from None
    if tree is None:
        raise QueryError("$filter is empty")
    _check_size(tree)
    return tree


def _children(node: ast._Node) -> list[ast._Node]:
    if isinstance(node, ast.BoolOp | ast.BinOp | ast.Compare):
        return [node.left, node.right]
    if isinstance(node, ast.UnaryOp):
        return [node.operand]
    if isinstance(node, ast.Call):
        return list(node.args)
    if isinstance(node, ast.List):
        return list(node.val)
    return []


def _check_size(tree: ast._Node) -> None:
    """Count nodes and depth without recursion (the translator recurses, so it must not see a deeper tree)."""
    stack, count = [(tree, 1)], 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise QueryError(f"$filter has more than {MAX_NODES} terms")
        if depth > MAX_TREE_DEPTH:
            raise QueryError(f"$filter nests deeper than {MAX_TREE_DEPTH} operators")
        stack += [(child, depth + 1) for child in _children(node)]


def path_of(node: ast._Node) -> list[str]:
    """``Datastream/Thing/name`` as ``["Datastream", "Thing", "name"]`` (iteratively)."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.owner
    if not isinstance(node, ast.Identifier) or node.namespace:
        raise QueryError("a property path is made of names separated by /")
    parts.append(node.name)
    return parts[::-1]


class Translator:
    """Writes the SQL of one filter tree for one entity (its properties given by ``resolve``)."""

    def __init__(self, resolve: Resolver, params: Params):
        self.resolve, self.params = resolve, params

    def condition(self, tree: ast._Node) -> str:
        expr = self.expr(tree)
        if expr.type != BOOL:
            raise QueryError("$filter must be a condition (true or false), not a value")
        return condition(expr.sql, expr).sql

    def expr(self, node: ast._Node) -> Expr:
        if isinstance(node, ast.Identifier | ast.Attribute):
            return self.property(node)
        if isinstance(node, ast._Literal):
            return self.literal(node)
        if isinstance(node, ast.BoolOp):
            left, right = self.expr(node.left), self.expr(node.right)
            if left.type != BOOL or right.type != BOOL:
                raise QueryError("and/or join conditions")
            op = "and" if isinstance(node.op, ast.And) else "or"
            return Expr(f"({left.sql} {op} {right.sql})", BOOL)
        if isinstance(node, ast.UnaryOp):
            operand = self.expr(node.operand)
            if isinstance(node.op, ast.Not):
                if operand.type != BOOL:
                    raise QueryError("not applies to a condition")
                return Expr(f"(not {operand.sql})", BOOL)
            if operand.type != NUMBER:
                raise QueryError("a minus sign applies to a number")
            return value(f"(-{operand.sql})", NUMBER, operand)
        if isinstance(node, ast.BinOp):
            left, right = self.expr(node.left), self.expr(node.right)
            if left.type != NUMBER or right.type != NUMBER:
                raise QueryError("add, sub, mul, div and mod apply to numbers")
            if isinstance(node.op, ast.Mod):  # PostgreSQL has no % for double precision: mod() of numerics
                return value(f"mod(({left.sql})::numeric, ({right.sql})::numeric)::float8", NUMBER, left, right)
            return value(f"({left.sql} {ARITHMETIC[type(node.op)]} {right.sql})", NUMBER, left, right)
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        raise QueryError(f"$filter does not support {type(node).__name__}")

    def property(self, node: ast._Node) -> Expr:
        path = path_of(node)
        found = self.resolve(path)
        if found is None:
            raise QueryError(f"unknown property {'/'.join(path)[:100]!r}")
        return found

    def literal(self, node: ast._Literal) -> Expr:
        if isinstance(node, ast.Null):
            return Expr("null", NULL)
        if isinstance(node, ast.Boolean):
            return Expr("true" if node.py_val else "false", BOOL)
        if isinstance(node, ast.Integer | ast.Float):
            try:
                value = float(node.val)
            except (ValueError, OverflowError):
                raise QueryError(f"not a number: {node.val[:40]}") from None
            return Expr(self.params.add(value, "float8"), NUMBER)
        if isinstance(node, ast.String):
            return Expr(self.params.add(node.val, "text"), TEXT)
        if isinstance(node, ast.DateTime):
            try:
                moment = datetime.fromisoformat(node.val.replace("z", "Z"))
            except ValueError:
                raise QueryError(f"not a time: {node.val[:40]}") from None
            if moment.tzinfo is None:
                raise QueryError("a time needs a UTC offset (Z or +09:00)")
            return Expr(self.params.add(moment, "timestamptz"), TIME)
        if isinstance(node, ast.Date):
            try:
                return Expr(self.params.add(date.fromisoformat(node.val), "date"), DATE)
            except ValueError:
                raise QueryError(f"not a date: {node.val[:40]}") from None
        if isinstance(node, ast.Geography):
            return Expr(f"st_geomfromtext({self.params.add(_wkt(node.val), 'text')}, 4326)", GEOM)
        raise QueryError(f"$filter does not support {type(node).__name__} values")

    def compare(self, node: ast.Compare) -> Expr:
        if isinstance(node.comparator, ast.In):
            return self.within(node)
        left, right = self.expr(node.left), self.expr(node.right)
        op = COMPARATORS[type(node.comparator)]
        if NULL in (left.type, right.type):
            if op not in ("=", "<>"):
                raise QueryError("null can only be compared with eq or ne")
            other = right if left.type == NULL else left
            return condition(f"({other.sql} is {'' if op == '=' else 'not '}null)", other)
        if left.type == TIME and right.type == DATE:
            right = Expr(f"({right.sql})::timestamptz", TIME)
        if left.type == DATE and right.type == TIME:
            left = Expr(f"({left.sql})::timestamptz", TIME)
        if left.type != right.type or left.type == GEOM:
            raise QueryError(f"cannot compare a {left.type} with a {right.type}")
        return condition(f"({left.sql} {op} {right.sql})", left, right)

    def within(self, node: ast.Compare) -> Expr:
        """``name in ('a', 'b')`` (OData 4.01's ``in``, which FROST offers too): a list of values of the left
        side's type, each a placeholder."""
        if not isinstance(node.right, ast.List) or not node.right.val:
            raise QueryError("in takes a parenthesised list of values, e.g. name in ('a', 'b')")
        if len(node.right.val) > MAX_IN_VALUES:
            raise QueryError(f"in takes at most {MAX_IN_VALUES} values")
        left = self.expr(node.left)
        items = []
        for item in node.right.val:
            if not isinstance(item, ast._Literal) or isinstance(item, ast.List | ast.Null):
                raise QueryError("in takes a list of values (no properties, lists or null)")
            found = self.literal(item)
            if left.type == TIME and found.type == DATE:
                found = Expr(f"({found.sql})::timestamptz", TIME)
            if found.type != left.type or left.type in (GEOM, BOOL):
                raise QueryError(f"in compares a {left.type} with a list of {left.type} values, not a {found.type}")
            items.append(found.sql)
        return condition(f"({left.sql} in ({', '.join(items)}))", left)

    def call(self, node: ast.Call) -> Expr:
        """A function call; a condition or value made of a to-many path keeps that path's ``exists``."""
        args = [self.expr(arg) for arg in node.args]
        made = self._function(node.func.full_name(), args)
        return condition(made.sql, *args) if made.type == BOOL else value(made.sql, made.type, *args)

    def _function(self, name: str, args: list[Expr]) -> Expr:
        types = [a.type for a in args]
        sql = [a.sql for a in args]

        def need(*expected: str) -> None:
            if tuple(types) != expected:
                raise QueryError(f"{name} takes ({', '.join(expected)}), not ({', '.join(types)})")

        if name in FIXED:
            expected, template, result = FIXED[name]
            need(*expected)
            return Expr(template.format(*sql), result)
        if name == "substring":
            if len(args) == 2:
                need(TEXT, NUMBER)
                return Expr(f"substr({sql[0]}, ({sql[1]})::int + 1)", TEXT)
            need(TEXT, NUMBER, NUMBER)
            return Expr(f"substr({sql[0]}, ({sql[1]})::int + 1, ({sql[2]})::int)", TEXT)
        if name in ("tolower", "toupper", "trim"):
            need(TEXT)
            return Expr(f"{ {'tolower': 'lower', 'toupper': 'upper', 'trim': 'btrim'}[name]}({sql[0]})", TEXT)
        if name in DATE_PARTS:
            need(TIME)
            part = "floor(extract(second from {0} at time zone 'UTC'))" if name == "second" else \
                f"extract({DATE_PARTS[name]} from {{0}} at time zone 'UTC')"
            return Expr(f"({part.format(sql[0])})::float8", NUMBER)
        if name == "fractionalseconds":
            need(TIME)
            return Expr(f"(extract(microseconds from {sql[0]}) / 1e6 - floor(extract(second from {sql[0]})))::float8",
                        NUMBER)
        if name == "totaloffsetminutes":
            need(TIME)
            return Expr("0::float8", NUMBER)
        if name == "now":
            return Expr("now()", TIME)
        if name in ("mindatetime", "maxdatetime"):
            return Expr("'-infinity'::timestamptz" if name == "mindatetime" else "'infinity'::timestamptz", TIME)
        if name in ("round", "floor", "ceiling"):
            need(NUMBER)
            return Expr(f"{ {'round': 'round', 'floor': 'floor', 'ceiling': 'ceil'}[name]}({sql[0]})", NUMBER)
        raise QueryError(f"the function {name[:60]} is not supported")


def _wkt(text: str) -> str:
    """Well-known text checked by shapely before the database sees it (PostGIS answers bad WKT with an
    internal error, which is not the caller's to see)."""
    from shapely import wkt
    from shapely.errors import ShapelyError

    text = text.strip()
    if text.upper().startswith("SRID="):
        srid, _, text = text.partition(";")
        if srid.strip().upper() != "SRID=4326":
            raise QueryError("geography literals are in WGS84 (SRID=4326)")
    try:
        geometry = wkt.loads(text)
    except (ShapelyError, ValueError, TypeError, AttributeError) as exc:
        raise QueryError(f"cannot read the geography literal: {str(exc)[:200]}") from None
    if geometry.is_empty or not geometry.is_valid:
        raise QueryError("the geography literal is empty or not a valid geometry")
    return geometry.wkt


def translate(text: str, resolve: Resolver, params: Params) -> str:
    """The SQL condition of ``$filter`` ``text``."""
    return Translator(resolve, params).condition(parse(text))
