"""Checks of single values against the contract: observation times, numbers, choices, positions, counts.

The rules live in the payload contract (:mod:`cityos.ingest.contract`, which the edge gateway imports
too); this module re-exports them under their historic names for the server's parsers.
"""

from __future__ import annotations

from cityos.ingest.contract import (
    EARLIEST,
    MAX_AGE,
    MAX_FUTURE,
    MAX_READINGS,
    TimeWindow,
    check_count,
    check_number,
    check_position,
    check_value,
    number_error,
    parse_time,
    short,
)

__all__ = ["EARLIEST", "MAX_AGE", "MAX_FUTURE", "MAX_READINGS", "TimeWindow", "check_count", "check_number",
           "check_position", "check_value", "number_error", "parse_time", "short"]
