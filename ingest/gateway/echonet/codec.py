"""ECHONET Lite frames (format 1) and property maps: encode, decode, and repair of miscounted frames.

Frame: EHD1 0x10, EHD2 0x81, TID (2 bytes), SEOJ (3), DEOJ (3), ESV (1), OPC (1), then OPC times
EPC (1), PDC (1), EDT (PDC bytes). Some devices send frames whose OPC does not match the properties
that follow; :func:`repair` rewrites OPC to the number of complete properties present, so that the
polling library (pychonet) neither crashes on a short frame nor ignores trailing properties.
"""

from __future__ import annotations

from dataclasses import dataclass, field

EHD1, EHD2 = 0x10, 0x81
PORT = 3610
MULTICAST = "224.0.23.0"
# services (ESV)
SETI, SETC, GET, INF_REQ = 0x60, 0x61, 0x62, 0x63
SET_RES, GET_RES, INF, INFC = 0x71, 0x72, 0x73, 0x74
SETI_SNA, SETC_SNA, GET_SNA, INF_SNA = 0x50, 0x51, 0x52, 0x53
NODE_PROFILE = (0x0E, 0xF0, 0x01)
CONTROLLER = (0x05, 0xFF, 0x01)
# properties every object has
STATMAP, SETMAP, GETMAP = 0x9D, 0x9E, 0x9F
INSTANCE_LIST = 0xD6


class CodecError(ValueError):
    """Bytes that are not an ECHONET Lite format-1 frame."""


@dataclass(slots=True)
class Frame:
    """One ECHONET Lite message."""

    tid: int
    seoj: tuple[int, int, int]
    deoj: tuple[int, int, int]
    esv: int
    props: list[tuple[int, bytes]] = field(default_factory=list)
    #: The OPC the frame declared (differs from ``len(props)`` for miscounted frames).
    declared: int = -1


def encode(frame: Frame, *, opc: int | None = None) -> bytes:
    """The frame's bytes (``opc`` overrides the property count: tests use it to send miscounted frames)."""
    out = bytearray([EHD1, EHD2, *frame.tid.to_bytes(2, "big"), *frame.seoj, *frame.deoj, frame.esv])
    out.append(len(frame.props) if opc is None else opc)
    for epc, edt in frame.props:
        out += bytes([epc, len(edt)]) + edt
    return bytes(out)


def decode(data: bytes) -> Frame:
    """Parse a frame; properties are read while complete ones remain (see ``Frame.declared``)."""
    if len(data) < 12 or data[0] != EHD1 or data[1] != EHD2:
        raise CodecError("not an ECHONET Lite format-1 frame")
    frame = Frame(int.from_bytes(data[2:4], "big"), (data[4], data[5], data[6]), (data[7], data[8], data[9]),
                  data[10], [], data[11])
    pos = 12
    while len(frame.props) < frame.declared and pos + 2 <= len(data):
        epc, pdc = data[pos], data[pos + 1]
        if pos + 2 + pdc > len(data):
            break
        frame.props.append((epc, bytes(data[pos + 2:pos + 2 + pdc])))
        pos += 2 + pdc
    # trailing complete properties beyond the declared count (EPCs are 0x80-0xFF; zero padding is not one)
    while pos + 2 <= len(data) and data[pos] >= 0x80 and pos + 2 + data[pos + 1] <= len(data):
        frame.props.append((data[pos], bytes(data[pos + 2:pos + 2 + data[pos + 1]])))
        pos += 2 + data[pos + 1]
    return frame


def repair(data: bytes) -> bytes | None:
    """The frame with OPC matching its complete properties; None if it is not a frame at all."""
    try:
        frame = decode(data)
    except CodecError:
        return None
    if frame.declared == len(frame.props) and len(encode(frame)) == len(data):
        return data
    return encode(frame)


def encode_property_map(epcs: list[int] | set[int]) -> bytes:
    """A property map (0x9D-0x9F): a list below 16 properties, else the 16-byte bitmap."""
    codes = sorted(set(epcs))
    if len(codes) < 16:
        return bytes([len(codes), *codes])
    bitmap = bytearray(16)
    for epc in codes:
        bitmap[epc & 0x0F] |= 1 << ((epc >> 4) - 8)
    return bytes([len(codes)]) + bytes(bitmap)
