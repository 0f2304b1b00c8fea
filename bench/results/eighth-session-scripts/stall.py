#!/usr/bin/env python3
"""Overload (wrk c=32, N s), drain, then 200 req/s for M s; print slow requests with wall
times next to a 50 ms timeline of WAL/DB size, Dirty/Writeback and disk queue."""
import asyncio, os, sys, time, subprocess, tempfile, threading, json, shutil
sys.path.insert(0, "/work/shared/peers")
import bench

BIN = sys.argv[1]
CLOSED_S = int(os.environ.get("CLOSED_S", "15"))
RATE = float(os.environ.get("RATE", "200"))
RATE_S = float(os.environ.get("RATE_S", "20"))
EXTRA = [a for a in sys.argv[2:]]
KEY = "bench-admin-key-0123456789abcdef"
OFF = time.time_ns() - time.monotonic_ns()
def wall(ns): return time.strftime("%H:%M:%S", time.gmtime((ns + OFF) / 1e9)) + f".{((ns + OFF) // 1_000_000) % 1000:03d}"

samples = []
stop = False
def sampler(d):
    def meminfo():
        out = {}
        for l in open("/proc/meminfo"):
            k, v = l.split(":")
            if k in ("Dirty", "Writeback"): out[k] = int(v.split()[0]) // 1024
        return out
    def disk():
        for l in open("/proc/diskstats"):
            f = l.split()
            if f[2] == "vda": return int(f[7]), int(f[11])  # writes completed, in flight
        return 0, 0
    while not stop:
        t = time.monotonic_ns()
        try: wal = os.path.getsize(os.path.join(d, "rez.db-wal")) >> 20
        except OSError: wal = -1
        try: db = os.path.getsize(os.path.join(d, "rez.db")) >> 20
        except OSError: db = -1
        m = meminfo(); w, infl = disk()
        samples.append((t, wal, db, m.get("Dirty"), m.get("Writeback"), w, infl))
        time.sleep(0.05)

async def main():
    global stop
    d = tempfile.mkdtemp(prefix="rez-bench.")
    sink = subprocess.Popen([sys.executable, "/work/shared/peers/sink.py", "--port", "18090"], stdout=open("/tmp/prof/sink.log", "w"), stderr=subprocess.STDOUT)
    env = dict(os.environ, REZ_DATA_DIR=d, REZ_BIND="127.0.0.1:18080", REZ_NTFY_URL="http://127.0.0.1:18090/topic",
               REZ_API_KEY=KEY, REZ_OUTBOUND_ALLOW_LOOPBACK="true", REZ_LOG=os.environ.get("LOG", "warn,rez_local=debug"))
    for kv in EXTRA:
        k, _, v = kv.partition("="); env[k] = v
    rez = subprocess.Popen([BIN, "serve"], env=env, stdout=open("/tmp/prof/rez.log", "w"), stderr=subprocess.STDOUT)
    threading.Thread(target=sampler, args=(d,), daemon=True).start()
    sc = bench.SinkClient(18090)
    for _ in range(100):
        try:
            await sc.get("/_health"); break
        except Exception: await asyncio.sleep(0.1)
    await asyncio.sleep(1)
    hdr = [f"Authorization: Bearer {KEY}"]
    tgt = bench.Target("http://127.0.0.1:18080/api/messages", '{"message_type":"notify","stage":"dev","version":"1.0","payload":{"title":"t","message":"hello {N}"}}', hdr)
    # warm-up like the harness
    await bench.open_loop(tgt, 200, 3, bench.ID_WARM, 10, 256, 40)
    t_closed = time.monotonic_ns()
    cl = await asyncio.to_thread(bench.closed_loop_wrk, "/usr/bin/wrk", tgt, "http://127.0.0.1:18080/api/messages", 32, CLOSED_S, bench.ID_CLOSED, 10, "/tmp/prof", hdr)
    t_closed_end = time.monotonic_ns()
    drain = await bench.wait_drain(sc, bench.ID_CLOSED, 1 << 62, cl["accepted"], 10, 120, rez)
    t_rate = time.monotonic_ns()
    res, t0, _, _ = await bench.open_loop(tgt, RATE, RATE_S, 1, 10, 256, RATE_S + 60)
    await bench.wait_drain(sc, 1, 10_000_000, len(res), 10, 60, rez)
    stop = True
    fronts = sorted((v[2] - v[1], v[1], i) for i, v in res.items() if 200 <= v[0] < 300)
    e2e = sorted(sc.arr[i] - v[1] for i, v in res.items() if i in sc.arr)
    print(f"closed {wall(t_closed)}-{wall(t_closed_end)} accepted/s={cl['accepted']/cl['duration_s']:.0f} drain={drain:.1f}s; rate from {wall(t_rate)}")
    print(f"front p50={bench.pct([f[0] for f in fronts],50)/1e6:.2f} p99={bench.pct([f[0] for f in fronts],99)/1e6:.2f} max={fronts[-1][0]/1e6:.1f} ms; e2e p99={bench.pct(e2e,99)/1e6:.2f} max={e2e[-1]/1e6:.1f} ms")
    slow = [f for f in fronts if f[0] > 20e6]
    print(f"{len(slow)} requests over 20 ms")
    for lat, ts, i in sorted(slow, key=lambda f: f[1])[:40]:
        print(f"  sent {wall(ts)} took {lat/1e6:.1f} ms id {i}")
    if slow:
        lo = min(s[1] for s in slow) - 1_000_000_000; hi = max(s[1] + s[0] for s in slow) + 300_000_000
        print("timeline t wal_MB db_MB dirty_MB writeback_MB disk_writes inflight")
        prev = None
        for s in samples:
            if lo <= s[0] <= hi:
                print(f"  {wall(s[0])} {s[1]:4} {s[2]:4} {s[3]:5} {s[4]:4} {s[5] - (prev or s[5]):5} {s[6]}")
            prev = s[5]
    rez.terminate(); rez.wait(20); sink.terminate(); shutil.rmtree(d, ignore_errors=True)

asyncio.run(main())
