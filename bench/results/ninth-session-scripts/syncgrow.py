# fdatasync latency: appending (the file grows: block allocation, a journal commit)
# versus overwriting blocks already allocated and synced.
import os, sys, time, statistics
d = sys.argv[1]; n = int(sys.argv[2]) if len(sys.argv) > 2 else 1500
buf = os.urandom(16384)
def run(mode):
    p = os.path.join(d, f"sg-{mode}")
    fd = os.open(p, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    if mode == "overwrite":
        os.write(fd, b"\0" * (16384 * n)); os.fsync(fd)
    lat = []
    for i in range(n):
        os.pwrite(fd, buf, i * 16384)
        t = time.perf_counter(); os.fdatasync(fd); lat.append((time.perf_counter() - t) * 1e6)
    os.close(fd); os.unlink(p)
    lat.sort()
    return f"{mode:9s} mean={statistics.mean(lat):7.0f}us p50={lat[len(lat)//2]:6.0f} p90={lat[int(len(lat)*.9)]:6.0f} p99={lat[int(len(lat)*.99)]:6.0f}"
for r in range(2):
    for m in ("append", "overwrite"):
        print(run(m), flush=True)
