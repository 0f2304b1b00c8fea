#!/usr/bin/env python3
"""The host's CPU while a benchmark runs, measured apart from rez.

This machine is a 2-vCPU guest, and the same binary has measured 0.13 ms of CPU per
request in one repetition and 0.18 ms in the next. That difference comes from the host,
through time stolen by the hypervisor or through slower cores. This probe measures both,
every second, so that a slow repetition can be told apart from a slow build:

- steal and idle, in cores, from /proc/stat;
- the CPU time (this thread's, so waiting in the run queue does not count) of one fixed
  piece of work (~1 ms). When the cores get slower, it takes longer.

    bench/cpu-probe.py

Runs until SIGTERM or SIGINT, then prints one line per 10 s window: its start (UTC), the
mean steal and idle in cores, and the work's CPU time relative to its median over the
whole run.
"""
import argparse
import os
import signal
import statistics
import sys
import time

PERIOD_S = 1.0
WINDOW = 10
CORES = os.cpu_count() or 1


def jiffies():
    with open("/proc/stat") as f:
        cpu = f.readline().split()[1:]
    v = [int(x) for x in cpu[:8]]
    # user nice system idle iowait irq softirq steal
    return sum(v), v[3] + v[4], v[7]


def unit():
    t0 = time.thread_time()
    s = 0
    for i in range(20000):
        s += i * i
    return (time.thread_time() - t0) * 1e3, s


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.parse_args()  # --help, and no stray arguments
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    samples = []  # (wall start, steal cores, idle cores, unit ms)
    total0, idle0, steal0 = jiffies()
    started = time.time()
    while not stop:
        t = time.time()
        ms, _ = unit()
        time.sleep(max(0.0, PERIOD_S - (time.time() - t)))
        total1, idle1, steal1 = jiffies()
        span = max(1, total1 - total0)
        samples.append((t, CORES * (steal1 - steal0) / span, CORES * (idle1 - idle0) / span, ms))
        total0, idle0, steal0 = total1, idle1, steal1
    if not samples:
        return
    median = statistics.median(s[3] for s in samples)
    lines = [
        f"cpu probe ({time.time() - started:.0f} s from {time.strftime('%H:%M:%S', time.gmtime(started))} UTC, "
        f"{CORES} cores; work unit median {median:.2f} ms of CPU): per {WINDOW} s, steal / idle in cores, "
        "work unit relative to its median"
    ]
    for i in range(0, len(samples), WINDOW):
        w = samples[i : i + WINDOW]
        lines.append(
            f"  {time.strftime('%H:%M:%S', time.gmtime(w[0][0]))} steal {statistics.mean(s[1] for s in w):.2f} "
            f"idle {statistics.mean(s[2] for s in w):.2f} unit {statistics.median(s[3] for s in w) / median:.2f}x"
        )
    print("\n".join(lines), file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
