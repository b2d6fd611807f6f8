#!/usr/bin/env python3
"""Read a file at a fixed pseudo-random sequence of places, one read at a time (as a
booting VM does), and print the seconds it took. Usage: replay_reads.py FILE SEED COUNT
[SIZE]. The same SEED gives the same sequence: that is what the learner must learn."""
import os
import random
import sys
import time

path, seed, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
size = int(sys.argv[4]) if len(sys.argv) > 4 else 16384
fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
total = os.fstat(fd).st_size
rng = random.Random(seed)
buf = bytearray(size)
mv = memoryview(buf)
t0 = time.monotonic()
for _ in range(count):
    off = rng.randrange(0, total // 4096 - size // 4096) * 4096
    os.preadv(fd, [mv], off)
print(f"{time.monotonic() - t0:.3f}")
os.close(fd)
