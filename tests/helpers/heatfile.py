#!/usr/bin/env python3
"""Reads an aheadfs heat file (MOUNTPOINT/.aheadfs/NAME.heat; format in man aheadfs, FILES)
independently of the C code, checks it, and prints it as JSON:
{"block_size", "nblocks", "time_s", "half_life_ms", "floor", "hot": [[block, p], ...],
 "cached": [[first, count], ...]}.  Exit status 1 for a file that is not well formed."""
import json
import struct
import sys


def crc32c(data):
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    crc = 0xFFFFFFFF
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def varint(data, pos):
    v = shift = 0
    while True:
        b = data[pos]
        pos += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v, pos


def parse(data):
    if len(data) < 60 or data[:8] != b"AHFSHEAT":
        raise ValueError("not a heat file")
    if struct.unpack_from("<I", data, len(data) - 4)[0] != crc32c(data[:-4]):
        raise ValueError("checksum mismatch")
    (version, block_size, nblocks, time_s, half_life_ms, floor_q, _zero, n_hot,
     n_cached) = struct.unpack_from("<IIQqIHHQQ", data, 8)
    if version != 1:
        raise ValueError(f"version {version}")
    pos, hot, cached, nxt, end = 56, [], [], 0, 0
    for _ in range(n_hot):
        gap, pos = varint(data, pos)
        (q,) = struct.unpack_from("<H", data, pos)
        pos += 2
        hot.append([nxt + gap, q / 65535])
        nxt += gap + 1
        if nxt > nblocks:
            raise ValueError("block out of range")
    for _ in range(n_cached):
        gap, pos = varint(data, pos)
        count, pos = varint(data, pos)
        cached.append([end + gap, count])
        end += gap + count
        if end > nblocks or count == 0:
            raise ValueError("range out of range")
    if pos != len(data) - 4:
        raise ValueError("trailing bytes")
    return {"block_size": block_size, "nblocks": nblocks, "time_s": time_s,
            "half_life_ms": half_life_ms, "floor": floor_q / 65535, "hot": hot,
            "cached": cached}


if __name__ == "__main__":
    try:
        with open(sys.argv[1], "rb") as f:
            print(json.dumps(parse(f.read())))
    except (ValueError, IndexError, struct.error) as e:
        sys.exit(f"{sys.argv[1]}: {e}")
