"""Decoding the ECHONET Lite properties the gateway polls (Appendix: Detailed Requirements for Device Objects).

Pure functions over the raw EDT bytes, so they are tested without devices. "No measurement"
values (``0xFFFFFFFE`` for unsigned 4-byte counters, ``0x7FFFFFFE``/``0x8000`` forms for signed ones)
decode to ``None``. Cumulative counters wrap at ``10 ** digits`` (property 0xD7), which
:class:`CounterUnwrap` turns into a monotonic total.
"""

from __future__ import annotations

from dataclasses import dataclass

# class codes (group, class)
SMART_METER = (0x02, 0x88)  # low-voltage smart electric energy meter
SOLAR = (0x02, 0x79)  # home solar power generation
BATTERY = (0x02, 0x7D)  # storage battery

# smart meter properties
METER_COEFFICIENT = 0xD3
METER_DIGITS = 0xD7
METER_CUMULATIVE_NORMAL = 0xE0
METER_UNIT = 0xE1
METER_CUMULATIVE_REVERSE = 0xE3
METER_INSTANT_POWER = 0xE7
METER_INSTANT_CURRENT = 0xE8
# solar properties
SOLAR_INSTANT_POWER = 0xE0
SOLAR_CUMULATIVE = 0xE1  # kWh x 0.001
# battery properties
BATTERY_SOC = 0xE4  # remaining stored electricity 3, %

#: 0xE1 unit code -> kWh per count.
UNITS = {0x00: 1.0, 0x01: 0.1, 0x02: 0.01, 0x03: 0.001, 0x04: 0.0001,
         0x0A: 10.0, 0x0B: 100.0, 0x0C: 1000.0, 0x0D: 10000.0}
NO_DATA_U32 = {0xFFFFFFFE, 0xFFFFFFFF}
NO_DATA_S32 = {0x7FFFFFFE, 0x7FFFFFFF, -0x80000000}
NO_DATA_S16 = {0x7FFE, 0x7FFF, -0x8000}


def unsigned(edt: bytes) -> int | None:
    """An unsigned big-endian counter, None for "no measurement" (or an empty EDT)."""
    if not edt:
        return None
    value = int.from_bytes(edt, "big")
    if len(edt) == 4 and value in NO_DATA_U32:
        return None
    if len(edt) == 1 and value in (0xFD, 0xFE, 0xFF):
        return None
    return value


def signed(edt: bytes) -> int | None:
    """A signed big-endian value, None for "no measurement" (overflow/underflow codes)."""
    if not edt:
        return None
    value = int.from_bytes(edt, "big", signed=True)
    if (len(edt) == 4 and value in NO_DATA_S32) or (len(edt) == 2 and value in NO_DATA_S16):
        return None
    return value


def meter_scale(coefficient: bytes | None, unit: bytes | None) -> float:
    """kWh per count of the cumulative counters: coefficient (0xD3, default 1) times unit (0xE1)."""
    factor = unsigned(coefficient) if coefficient else None
    code = unit[0] if unit else 0x00
    if code not in UNITS:
        raise ValueError(f"unknown cumulative-energy unit code 0x{code:02X}")
    return (factor or 1) * UNITS[code]


def meter_currents(edt: bytes) -> tuple[float | None, float | None]:
    """Instantaneous currents of phases R and T in amperes (0xE8: two signed 0.1 A values)."""
    if len(edt) != 4:
        return None, None
    r, t = signed(edt[:2]), signed(edt[2:])
    return (None if r is None else r / 10, None if t is None else t / 10)


@dataclass
class CounterUnwrap:
    """Turns a wrapping counter (0 .. 10**digits - 1) into a total that only grows.

    A reading below the previous one is a wrap (the counter passed its maximum), unless the drop is
    tiny relative to the range, which a meter replaced or reset would not be either: such readings
    are reported as ``None`` (counted by the adapter) rather than inventing a wrap. A reading with
    more digits than the meter declares (0xD7) cannot come from a working counter: it is a counter
    fault, refused (``None``) and counted in ``faults``, and does not move the counter.
    """

    digits: int = 8
    last: int | None = None
    wraps: int = 0
    faults: int = 0

    @property
    def modulus(self) -> int:
        return 10 ** self.digits

    def update(self, raw: int) -> int | None:
        """The unwrapped total for ``raw``, or None when ``raw`` cannot follow the previous value or is
        beyond the declared digits (a counter fault)."""
        if raw >= self.modulus:
            self.faults += 1
            return None
        if self.last is not None and raw < self.last:
            if self.last - raw > self.modulus // 2:  # passed the maximum and started again at 0
                self.wraps += 1
            else:
                return None
        self.last = raw
        return self.wraps * self.modulus + raw

    def state(self) -> dict:
        return {"digits": self.digits, "last": self.last, "wraps": self.wraps, "faults": self.faults}
