"""A real ECHONET Lite node for tests: a smart meter (counter near its wrap), solar and a battery on UDP 3610.

Run inside a network namespace: ``python responder.py``. Speaks the wire format through the
gateway's codec; answers Get with Get_Res (or Get_SNA for unknown properties), to port 3610.
"""

from __future__ import annotations

import socket

from cityos.ingest.gateway.echonet import codec

METER, SOLAR, BATTERY = (0x02, 0x88, 0x01), (0x02, 0x79, 0x01), (0x02, 0x7D, 0x01)
state = {"cumulative": 999_990}


GET_MAPS = {METER: [0x80, 0xD3, 0xD7, 0xE0, 0xE1, 0xE3, 0xE7, 0xE8], SOLAR: [0x80, 0xE0, 0xE1],
            BATTERY: [0x80, 0xE4]}


def value(eoj: tuple[int, int, int], epc: int) -> bytes | None:
    if eoj in GET_MAPS and epc in (codec.STATMAP, codec.SETMAP, codec.GETMAP):
        return codec.encode_property_map(GET_MAPS[eoj] + [0x9D, 0x9E, 0x9F] if epc == codec.GETMAP else [0x80])
    node = {0x8A: bytes([0x00, 0x00, 0x77]), 0x8C: b"CITYOS-TEST-0001", 0x83: bytes([0xFE]) + bytes(16),
            0xD6: bytes([3, *METER, *SOLAR, *BATTERY])}
    if eoj[:2] == (0x0E, 0xF0):
        return node.get(epc)
    if eoj == METER:
        if epc == 0xE0:
            state["cumulative"] = (state["cumulative"] + 400_000) % 1_000_000  # wraps every few reads
            return state["cumulative"].to_bytes(4, "big")
        return {0xD3: (1).to_bytes(4, "big"), 0xD7: bytes([6]), 0xE1: bytes([0x01]),
                0xE3: bytes.fromhex("FFFFFFFE"), 0xE7: (850).to_bytes(4, "big", signed=True),
                0xE8: bytes.fromhex("0050FFFE")}.get(epc)
    if eoj == SOLAR:
        return {0xE0: (2400).to_bytes(2, "big"), 0xE1: (1_234_567).to_bytes(4, "big")}.get(epc)
    if eoj == BATTERY:
        return {0xE4: bytes([64])}.get(epc)
    return None


def main() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("0.0.0.0", codec.PORT))
    print("ready", flush=True)
    while True:
        data, (host, _port) = sock.recvfrom(2048)
        try:
            request = codec.decode(data)
        except codec.CodecError:
            continue
        if request.esv != codec.GET:
            continue
        answers = [(epc, value(request.deoj, epc)) for epc, _ in request.props]
        missing = any(v is None for _, v in answers)
        reply = codec.Frame(request.tid, request.deoj, request.seoj, codec.GET_SNA if missing else codec.GET_RES,
                            [(epc, v or b"") for epc, v in answers])
        sock.sendto(codec.encode(reply), (host, codec.PORT))


if __name__ == "__main__":
    main()
