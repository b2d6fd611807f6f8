#!/usr/bin/env python3
"""Compare random (offset, length) reads of two files: the image through aheadfs and the
original. Reads include unaligned offsets, reads across blocks, the last partial block,
and reads at and past EOF. Exit status 0 when every read matched."""
import os
import random
import sys


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: randread.py MOUNTED ORIGINAL COUNT")
    mounted, original, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    size = os.path.getsize(original)
    if os.path.getsize(mounted) != size:
        sys.exit(f"size differs: {os.path.getsize(mounted)} != {size}")
    rng = random.Random(20261125)
    edge = [(size - 1, 1), (size - 100, 4096), (size, 10), (size + 4096, 10), (0, 1)]
    a = os.open(mounted, os.O_RDONLY)
    b = os.open(original, os.O_RDONLY)
    bad = 0
    for i in range(count):
        if i < len(edge):
            off, length = edge[i]
        else:
            off = rng.randrange(0, size)
            length = rng.choice([1, 511, 4096, 65536, 65537, 200000, rng.randrange(1, 1 << 20)])
        x = os.pread(a, length, max(off, 0))
        y = os.pread(b, length, max(off, 0))
        if x != y:
            bad += 1
            print(f"# mismatch at offset {off} length {length}: got {len(x)} bytes, want {len(y)}")
            if bad > 10:
                break
    os.close(a)
    os.close(b)
    sys.exit(1 if bad else 0)


main()
