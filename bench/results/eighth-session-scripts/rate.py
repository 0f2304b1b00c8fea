#!/usr/bin/env python3
"""Start rez fresh, warm up, then RATE req/s for RATE_S s; report fdatasync/s, fsync/s and
bytes written per message (from /proc/PID/io) during the rate phase."""
import asyncio, os, sys, time, subprocess, tempfile, shutil
sys.path.insert(0, "/work/shared/peers")
import bench
BIN = sys.argv[1]; RATE = float(os.environ.get("RATE", "200")); RATE_S = float(os.environ.get("RATE_S", "10"))
KEY = "bench-admin-key-0123456789abcdef"
def io(pid):
    d = dict(l.split(": ") for l in open(f"/proc/{pid}/io").read().split("\n") if l)
    return int(d["write_bytes"]), int(d["syscw"])
async def main():
    d = tempfile.mkdtemp(prefix="rez-bench.")
    sink = subprocess.Popen([sys.executable, "/work/shared/peers/sink.py", "--port", "18090"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    env = dict(os.environ, REZ_DATA_DIR=d, REZ_BIND="127.0.0.1:18080", REZ_NTFY_URL="http://127.0.0.1:18090/topic",
               REZ_API_KEY=KEY, REZ_OUTBOUND_ALLOW_LOOPBACK="true", REZ_LOG="warn")
    for kv in sys.argv[2:]:
        k, _, v = kv.partition("="); env[k] = v
    rez = subprocess.Popen([BIN, "serve"], env=env, stdout=open("/tmp/prof/rez-rate.log", "w"), stderr=subprocess.STDOUT)
    sc = bench.SinkClient(18090)
    for _ in range(100):
        try:
            await sc.get("/_health"); break
        except Exception: await asyncio.sleep(0.1)
    await asyncio.sleep(1)
    tgt = bench.Target("http://127.0.0.1:18080/api/messages", '{"message_type":"notify","stage":"dev","version":"1.0","payload":{"title":"t","message":"hello {N}"}}', [f"Authorization: Bearer {KEY}"])
    await bench.open_loop(tgt, 200, 3, bench.ID_WARM, 10, 256, 40)
    await asyncio.sleep(1)
    perf = subprocess.Popen(["perf", "stat", "-x,", "-e", "syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync,syscalls:sys_enter_pwrite64", "-p", str(rez.pid)], stderr=subprocess.PIPE, text=True)
    w0, c0 = io(rez.pid)
    res, *_ = await bench.open_loop(tgt, RATE, RATE_S, 1, 10, 256, RATE_S + 60)
    await bench.wait_drain(sc, 1, 10_000_000, len(res), 3, 30, rez)
    w1, c1 = io(rez.pid)
    perf.send_signal(2); _, err = perf.communicate()
    n = len(res)
    counts = {l.split(",")[2].split(":")[-1]: int(l.split(",")[0]) for l in err.strip().split("\n") if l and l[0].isdigit()}
    fr = sorted(v[2] - v[1] for v in res.values() if 200 <= v[0] < 300)
    print(f"{n} msgs: per message fdatasync={counts.get('sys_enter_fdatasync',0)/n:.2f} fsync={counts.get('sys_enter_fsync',0)/n:.2f} pwrite={counts.get('sys_enter_pwrite64',0)/n:.1f} write_bytes={(w1-w0)/n/1024:.1f} KiB; front p99={bench.pct(fr,99)/1e6:.2f} ms")
    rez.terminate(); rez.wait(20); sink.terminate(); shutil.rmtree(d, ignore_errors=True)
asyncio.run(main())
