"""Stream ``senml``: SenML JSON (RFC 8428), a pack (JSON array) of records.

Resolution follows RFC 8428 section 4: ``bn``, ``bt``, ``bu``, ``bv`` and ``bs`` apply to the record
that carries them and to all later records until changed.

- Metric: the resolved name (``bn`` + ``n``) after its last ``:`` or ``/``. So ``{"bn":
  "urn:dev:ow:10e2073a01080063:", "n": "power_w"}``, ``{"n": "urn:dev:mac:0024befffe804ff1:power_w"}``
  and ``{"n": "power_w"}`` all name ``power_w``. The device is always the topic's device: the name's
  prefix is not checked against it.
- Value: ``v`` (number, plus ``bv``), ``vs`` (string: choice fields such as ``sleep_stage``, ``role``),
  ``vb`` (boolean: ``blade_down``; ``true`` for the ``pillbox_open`` event) or ``s`` (sum, plus
  ``bs``). ``vd`` (data) is refused with ``bad_type``.
- Unit: ``u`` (or ``bu``), when given, must be one of the metric's SenML units in the catalog (e.g.
  ``W``/``kW`` for ``power_w``, ``Cel`` for ``body_temp_c``); the value is converted to the catalog
  unit. Units of ``env`` metrics (free names) are not checked.
- Time: ``bt`` + ``t``; a result below 2**28 is relative to the platform clock on arrival (RFC 8428
  section 4.5.3), so ``t: -60`` is a minute ago and a pack without times is "now".
- Records with the same resolved time form one reading (a vehicle position is ``lat`` and ``lon``
  at one time); the same metric twice at one time is ``duplicate_time``.
- Only the RFC 8428 fields are allowed (``bver`` at most 10); any other field, including the
  "must understand" fields ending in ``_``, is ``unknown_field``.
"""

from __future__ import annotations

from cityos.ingest.catalog import field_for
from cityos.ingest.rows import Rejected
from cityos.ingest.validation import TimeWindow, check_count, number_error, short

NAME = "senml"
DOMAINS: frozenset[str] | None = None
RELATIVE_LIMIT = 2**28
SENML_VERSION = 10
BASE_FIELDS = frozenset({"bn", "bt", "bu", "bv", "bs", "bver"})
FIELDS = BASE_FIELDS | {"n", "u", "v", "vs", "vb", "vd", "s", "t", "ut"}
_MAX = 1.7976931348623157e308


def _num(record: dict, key: str) -> float:
    value = record[key]
    cls = value.__class__
    if (cls is float or cls is int) and -_MAX <= value <= _MAX:
        return float(value)
    raise number_error(f"SenML {key}", value, -_MAX, _MAX)


class _Base:
    __slots__ = ("name", "sum", "time", "unit", "value")

    def __init__(self) -> None:
        self.name, self.time, self.value, self.sum = "", 0.0, 0.0, 0.0
        self.unit: str | None = None

    def update(self, record: dict) -> None:
        if "bn" in record:
            name = record["bn"]
            if name.__class__ is not str:
                raise Rejected("bad_type", "SenML bn must be a string")
            self.name = name
        if "bt" in record:
            self.time = _num(record, "bt")
        if "bu" in record:
            unit = record["bu"]
            if unit is not None and unit.__class__ is not str:
                raise Rejected("bad_type", "SenML bu must be a string")
            self.unit = unit
        if "bv" in record:
            self.value = _num(record, "bv")
        if "bs" in record:
            self.sum = _num(record, "bs")
        if "bver" in record:
            version = record["bver"]
            if version.__class__ is not int or not 1 <= version <= SENML_VERSION:
                raise Rejected("bad_shape",
                               f"SenML version {short(version)} is not supported (at most {SENML_VERSION})")


def _metric(full_name: str) -> str:
    cut = max(full_name.rfind(":"), full_name.rfind("/"))
    return full_name[cut + 1:] if cut >= 0 else full_name


def _value(record: dict, base: _Base, metric: str) -> object:
    if "v" in record:
        value = record["v"]
        cls = value.__class__
        if cls is not float and cls is not int:
            raise Rejected("bad_type", f"SenML v of {metric[:64]!r} must be a number (vs, vb for others)")
        return _num(record, "v") + base.value if base.value else value
    if "vs" in record:
        return record["vs"]
    if "vb" in record:
        return record["vb"]
    if "s" in record:
        return _num(record, "s") + base.sum
    if "vd" in record:
        raise Rejected("bad_type", f"SenML data values (vd) are not accepted ({metric[:64]!r})")
    raise Rejected("bad_shape", f"SenML record {metric[:64]!r} has no value (v, vs, vb or s)")


def _convert(domain: str, metric: str, unit: object, value: object) -> object:
    """``value`` converted from SenML ``unit`` to the catalog unit of ``metric``."""
    spec = field_for(domain, metric)
    if spec is None:
        raise Rejected("unknown_field", f"{metric[:64]!r} is not a {domain} field")
    if unit is None:
        return value
    if unit.__class__ is not str:
        raise Rejected("bad_type", "SenML u must be a string")
    if not spec.unit and spec.kind == "number":  # free env names: any unit
        return value
    factor = spec.senml_units.get(unit)  # type: ignore[call-overload]
    if factor is None:
        accepted = ", ".join(spec.senml_units) or "none"
        raise Rejected("bad_unit", f"{metric} cannot be given in {unit[:20]!r} (units: {accepted})")  # type: ignore[index]
    if factor != 1.0 and (value.__class__ is float or value.__class__ is int):
        try:
            return value * factor  # type: ignore[operator]
        except OverflowError:  # an integer beyond any float
            raise Rejected("out_of_range", f"{metric} value is too large") from None
    return value


def parse(document: object, domain: str, window: TimeWindow) -> list:
    """The readings of a SenML pack: one dict per distinct resolved time, with epoch seconds in ``t``."""
    if document.__class__ is not list:
        raise Rejected("bad_shape", "a SenML pack is a JSON array of records")
    check_count(len(document), "SenML records")  # type: ignore[arg-type]
    base = _Base()
    now_ts = window.now_ts
    readings: dict[float, dict] = {}
    for record in document:  # type: ignore[attr-defined]
        if record.__class__ is not dict:
            raise Rejected("bad_shape", "SenML records are JSON objects")
        if not record.keys() <= FIELDS:
            unknown = sorted(k[:40] for k in record.keys() - FIELDS)
            raise Rejected("unknown_field",
                           f"SenML records have no field {', '.join(map(repr, unknown))[:160]}")
        if not record.keys().isdisjoint(BASE_FIELDS):
            base.update(record)
        name = record.get("n", "")
        if name.__class__ is not str:
            raise Rejected("bad_type", "SenML n must be a string")
        metric = _metric(base.name + name)
        if not metric:
            raise Rejected("bad_shape", "a SenML record resolves to an empty name")
        value = _convert(domain, metric, record.get("u", base.unit), _value(record, base, metric))
        t = base.time + _num(record, "t") if "t" in record else base.time
        if "ut" in record:
            _num(record, "ut")
        if t < RELATIVE_LIMIT:
            t += now_ts
        reading = readings.get(t)
        if reading is None:
            readings[t] = {"t": t, metric: value}
        elif metric in reading:
            raise Rejected("duplicate_time", f"SenML metric {metric[:64]!r} twice at time {t!r}")
        else:
            reading[metric] = value
    return list(readings.values())
