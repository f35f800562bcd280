"""The subset of Solr's query syntax that CKAN sends, translated to SQL over a jsonb document table.

Pure Python with no CKAN import, so it is unit-tested on its own. Supported: ``*:*``;
``field:value``, ``field:"a phrase"``, ``field:(a OR b)``, ``field:[a TO b]`` / ``{a TO b}``
(``*`` open), wildcards ``*`` and ``?`` in values; free-text terms and phrases (matched,
case-insensitively, against every text of the document); ``AND``, ``OR``, ``NOT``, ``&&``, ``||``,
``!``, ``+`` (required) and ``-`` (prohibited); parentheses. Juxtaposed clauses combine with the
default operator (``q.op``, AND for CKAN).

The SQL refers to the document as ``doc`` and its searchable text as ``body``; a field's values
(array elements, or the scalar) come from the SQL function ``cityos_search_values(doc, field)``.
Parameters are psycopg2 pyformat (``%(p0)s``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-.]*$")
#: Fields searched as text (free-text default field and Solr's tokenised fields).
TEXT_FIELDS = {"text", "title", "notes", "res_description", "res_name", "tags_text"}


#: Deepest nesting of parentheses and NOTs read (the parser recurses; deeper input is refused, not a crash).
MAX_DEPTH = 64


class QueryError(ValueError):
    """The query is outside the supported syntax (CKAN answers it as an invalid search query, 400)."""


@dataclass
class Sql:
    """A SQL condition with its parameters."""

    params: dict = field(default_factory=dict)

    def param(self, value: object) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f"%({name})s"


_TOKEN = re.compile(r'''
    (?P<ws>\s+)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<range>[\[{][^\]}]*\s+TO\s+[^\]}]*[\]}])
  | (?P<phrase>"(?:[^"\\]|\\.)*")
  | (?P<op>&&|\|\|)
  | (?P<word>(?:[^\s()"\\:]|\\.)+:?|:)
''', re.VERBOSE)


def tokenize(query: str) -> list[tuple[str, str]]:
    """(kind, text) tokens of ``query``; kinds: lparen, rparen, range, phrase, op, word."""
    tokens, position = [], 0
    while position < len(query):
        match = _TOKEN.match(query, position)
        if not match:
            raise QueryError(f"cannot read the query at {query[position:position + 20]!r}")
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append((kind, match.group()))
        position = match.end()
    return tokens


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _like(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


class _Parser:
    def __init__(self, query: str, sql: Sql, default_field: str, default_op: str):
        self.tokens = tokenize(query)
        self.position = 0
        self.sql = sql
        self.default_field = default_field
        self.default_op = default_op
        self.depth = 0

    def _deeper(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise QueryError(f"the query nests deeper than {MAX_DEPTH} levels")

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise QueryError("the query ends too early")
        self.position += 1
        return token

    def _is_op(self, *names: str) -> bool:
        token = self.peek()
        return token is not None and token[0] in ("word", "op") and token[1] in names

    def parse(self, fld: str | None = None, closing: bool = False) -> str:
        """Clauses up to the end (or a closing parenthesis): OR binds loosest, then AND, then NOT."""
        condition = self.parse_or(fld)
        token = self.peek()
        if token is not None and not (closing and token[0] == "rparen"):
            raise QueryError("unbalanced ')'")
        return condition

    def _at_end(self) -> bool:
        token = self.peek()
        return token is None or token[0] == "rparen"

    def parse_or(self, fld: str | None) -> str:
        parts = [self.parse_and(fld)]
        while not self._at_end():
            if self._is_op("OR", "||"):
                self.take()
            elif self.default_op != "OR":
                break
            parts.append(self.parse_and(fld))
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def parse_and(self, fld: str | None) -> str:
        parts = [self.parse_unary(fld)]
        while not self._at_end() and not self._is_op("OR", "||"):
            if self._is_op("AND", "&&"):
                self.take()
            elif self.default_op == "OR":
                break
            parts.append(self.parse_unary(fld))
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def parse_unary(self, fld: str | None) -> str:
        kind, text = self.peek() or ("", "")
        if kind == "word" and text in ("-", "!", "NOT", "+"):
            self.take()
            self._deeper()
            inner = self.parse_unary(fld)
            self.depth -= 1
            return inner if text == "+" else f"(NOT {inner})"
        if kind == "word" and len(text) > 1 and text[0] in "+-!":
            self.tokens[self.position] = (kind, text[1:])
            self._deeper()
            inner = self.parse_unary(fld)
            self.depth -= 1
            return inner if text[0] == "+" else f"(NOT {inner})"
        return self.clause(fld)

    def clause(self, fld: str | None) -> str:
        kind, text = self.take()
        if kind == "lparen":
            self._deeper()
            inner = self.parse(fld, closing=True)
            if self.peek() is None or self.take()[0] != "rparen":
                raise QueryError("missing ')'")
            self.depth -= 1
            return inner
        if kind == "rparen":
            raise QueryError("unexpected ')'")
        if kind == "word" and fld is None and ":" in text and not text.startswith("\\"):
            name, _, rest = text.partition(":")
            if name == "*" and (rest == "*" or (not rest and self.peek() == ("word", "*"))):
                if not rest:
                    self.take()
                return "TRUE"
            if not FIELD_NAME.match(name):
                raise QueryError(f"unsupported field name {name!r}")
            if rest:
                self.tokens.insert(self.position, ("word", rest))
            nxt = self.peek()
            if nxt is None:
                raise QueryError(f"no value for field {name!r}")
            return self.clause(name)
        target = fld or self.default_field
        if kind == "phrase":
            return self.match(target, _unescape(text[1:-1]), exact_phrase=True)
        if kind == "range":
            return self.range(target, text)
        return self.match(target, _unescape(text))

    def match(self, fld: str, value: str, exact_phrase: bool = False) -> str:
        if fld in TEXT_FIELDS:
            if fld == "text":
                return f"body ILIKE {self.sql.param('%' + _like(value.lower()) + '%')}"
            values = f"cityos_search_values(doc, {self.sql.param(fld)})"
            return f"EXISTS (SELECT 1 FROM {values} v WHERE v ILIKE {self.sql.param('%' + _like(value) + '%')})"
        values = f"cityos_search_values(doc, {self.sql.param(fld)})"
        if value == "*":
            return f"EXISTS (SELECT 1 FROM {values} v)"
        if not exact_phrase and ("*" in value or "?" in value):
            return f"EXISTS (SELECT 1 FROM {values} v WHERE v LIKE {self.sql.param(_like(value))})"
        return f"EXISTS (SELECT 1 FROM {values} v WHERE v = {self.sql.param(value)})"

    def range(self, fld: str, text: str) -> str:
        inclusive_low, inclusive_high = text[0] == "[", text[-1] == "]"
        low, _, high = text[1:-1].partition(" TO ")
        low, high = _unescape(low.strip().strip('"')), _unescape(high.strip().strip('"'))
        values = f"cityos_search_values(doc, {self.sql.param(fld)})"
        numeric = all(re.fullmatch(r"-?\d+(\.\d+)?", b) for b in (low, high) if b != "*")
        column = "(CASE WHEN v ~ '^-?[0-9]+(\\.[0-9]+)?$' THEN v::numeric END)" if numeric else "v"
        conditions = []
        for bound, inclusive, op in ((low, inclusive_low, ">"), (high, inclusive_high, "<")):
            if bound in ("*", ""):
                continue
            if bound.upper().startswith("NOW"):
                bound = "now"
            value = float(bound) if numeric else bound
            placeholder = self.sql.param(value)
            if bound == "now":
                placeholder = "to_char(now() at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
            conditions.append(f"{column} {op}{'=' if inclusive else ''} {placeholder}")
        where = " AND ".join(conditions) or "TRUE"
        return f"EXISTS (SELECT 1 FROM {values} v WHERE {where})"


def to_sql(query: str, sql: Sql | None = None, default_field: str = "text",
           default_op: str = "AND") -> tuple[str, dict]:
    """SQL condition and parameters for the Solr query ``query``."""
    sql = sql or Sql()
    query = (query or "").strip()
    if not query or query in ('""', "''"):
        return "TRUE", sql.params
    return _Parser(query, sql, default_field, default_op).parse(), sql.params


def sort_sql(sort: str | None) -> str:
    """ORDER BY for Solr's ``sort`` (``field asc, field desc``); ``score`` falls back to recency."""
    terms = []
    for part in (sort or "").split(","):
        words = part.split()
        if not words:
            continue
        name, direction = words[0], (words[1].lower() if len(words) > 1 else "asc")
        if direction not in ("asc", "desc"):
            raise QueryError(f"Unknown sort order {part.strip()!r}")
        if name == "score":
            continue
        if not FIELD_NAME.match(name):
            raise QueryError(f"Can't determine a Sort Order for {name!r}")
        if name in ("num_resources", "num_tags"):
            terms.append(f"(doc->>'{name}')::numeric {direction}")
        else:
            terms.append(f"lower(doc->>'{name}') {direction} NULLS LAST")
    terms.append("doc->>'metadata_modified' DESC NULLS LAST")
    terms.append("index_id")
    return ", ".join(terms)
