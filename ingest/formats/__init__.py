"""The payload formats, by stream name: the registry :data:`FORMATS`.

A format is a module with ``NAME`` (its stream name), ``DOMAINS`` (the domains it is offered for, or
``None`` for all) and ``parse(document, domain, window) -> list[dict]``, which turns a decoded JSON
document into plain readings ``{"t": <time>, <catalog field>: <value>, ...}``; ``t`` may be an RFC
3339 string, epoch seconds or an aware ``datetime``. The readings are then validated against the
catalog and turned into rows by :mod:`cityos.ingest.normalise`, so a format only translates shape.
Adding a format: one module here and one entry in :data:`FORMATS` (or :func:`register` at run time).

Standard library only (the edge gateway may import it to check what it sends).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

from cityos.ingest.formats import d4c, readings, senml
from cityos.ingest.rows import Rejected
from cityos.ingest.validation import TimeWindow

FormatParser = Callable[[object, str, TimeWindow], list]


@dataclass(frozen=True, slots=True)
class Format:
    """A registered payload format."""

    name: str
    parse: FormatParser
    domains: frozenset[str] | None = None
    summary: str = ""

    @classmethod
    def from_module(cls, module: ModuleType) -> Format:
        """The format a module defines (``NAME``, ``DOMAINS``, ``parse``; its docstring's first line)."""
        return cls(module.NAME, module.parse, module.DOMAINS, (module.__doc__ or "").strip().split("\n")[0])


FORMATS: dict[str, Format] = {f.name: f for f in map(Format.from_module, (readings, senml, d4c))}


def register(fmt: Format) -> None:
    """Add (or replace) a format in the registry."""
    FORMATS[fmt.name] = fmt


def format_for(stream: str, domain: str) -> Format:
    """The format of ``stream`` for ``domain``; :class:`Rejected` ``unsupported_format`` otherwise."""
    fmt = FORMATS.get(stream)
    if fmt is None:
        raise Rejected("unsupported_format",
                       f"stream {stream[:40]!r} is not a format; one of {', '.join(FORMATS)}")
    if fmt.domains is not None and domain not in fmt.domains:
        raise Rejected("unsupported_format",
                       f"stream {stream!r} is offered for {', '.join(sorted(fmt.domains))} only")
    return fmt


__all__ = ["FORMATS", "Format", "FormatParser", "format_for", "register"]
