#!/usr/bin/env python3
"""The disk's sync latency while a benchmark runs, measured apart from rez.

Every accepted message is durable before its 2xx, so a request's latency includes one
`fdatasync` of the WAL at least: when the disk stalls, every commit waits, and no
software design that keeps that promise can hide it. This probe writes 8 KiB to a file of
its own and `fdatasync`s it every 50 ms (a small load next to rez's hundreds of syncs per
second), so that each benchmark figure comes with the state of the disk at the time.

    bench/disk-probe.py DIR

Runs until SIGTERM or SIGINT, then prints the number of syncs, their p50/p99/p99.9/max
and every sync that took 20 ms or more, with its end time (UTC).
"""
import argparse
import os
import signal
import sys
import tempfile
import time

PERIOD_S = 0.05
SIZE = 8192
FILE_BYTES = 1 << 20


def pct(sorted_ms, p):
    return sorted_ms[min(len(sorted_ms) - 1, int(len(sorted_ms) * p))] if sorted_ms else 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", help="a directory on the disk under test (the data directory's filesystem)")
    a = ap.parse_args()

    fd, path = tempfile.mkstemp(prefix="rez-disk-probe.", dir=a.dir)
    os.posix_fallocate(fd, 0, FILE_BYTES)
    os.fsync(fd)
    buf = os.urandom(SIZE)
    lat, slow = [], []
    started = time.time()
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    off = 0
    try:
        while not stop:
            time.sleep(PERIOD_S)
            os.pwrite(fd, buf, off)
            off = (off + SIZE) % FILE_BYTES
            t0 = time.monotonic()
            os.fdatasync(fd)
            ms = (time.monotonic() - t0) * 1e3
            lat.append(ms)
            if ms >= 20:
                end = time.time()
                slow.append((time.strftime("%H:%M:%S", time.gmtime(end)) + f".{int(end * 1000) % 1000:03d}", ms))
    finally:
        os.close(fd)
        os.unlink(path)
    lat.sort()
    secs = time.time() - started
    lines = [
        f"disk probe ({a.dir}, {secs:.0f} s from {time.strftime('%H:%M:%S', time.gmtime(started))} UTC): "
        f"{len(lat)} syncs of 8 KiB, p50 {pct(lat, 0.5):.2f} ms, p99 {pct(lat, 0.99):.2f} ms, "
        f"p99.9 {pct(lat, 0.999):.1f} ms, max {lat[-1] if lat else 0:.1f} ms; "
        f"{len(slow)} took 20 ms or more, {sum(1 for _, ms in slow if ms >= 50)} of them 50 ms or more",
    ]
    if slow:
        lines.append("  slow syncs (end time, ms): " + ", ".join(f"{t} {ms:.0f}" for t, ms in slow))
    print("\n".join(lines), file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
