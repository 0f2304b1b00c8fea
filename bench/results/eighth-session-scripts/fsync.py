import os, time, sys
path = "/tmp/prof/fsync-test.bin"
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
os.posix_fallocate(fd, 0, 8 << 20); os.fsync(fd)
secs = float(sys.argv[1]) if len(sys.argv) > 1 else 30
period = 1 / float(sys.argv[2]) if len(sys.argv) > 2 else 0.005
lat = []; slow = []
t_end = time.monotonic() + secs; off = 0; SZ = int(os.environ.get("SZ", "8192")); buf = os.urandom(SZ)
nxt = time.monotonic()
while time.monotonic() < t_end:
    now = time.monotonic()
    if now < nxt: time.sleep(nxt - now)
    nxt += period
    os.pwrite(fd, buf, off); off = (off + SZ) % (8 << 20)
    t0 = time.monotonic(); os.fdatasync(fd); d = (time.monotonic() - t0) * 1e3
    lat.append(d)
    if d > 20: slow.append((time.strftime("%H:%M:%S"), round(d, 1)))
lat.sort(); n = len(lat)
print(f"n={n} p50={lat[n//2]:.2f} p99={lat[int(n*.99)]:.2f} p999={lat[int(n*.999)]:.2f} max={lat[-1]:.1f} ms; >20ms: {len(slow)}")
print(slow[:30])
os.unlink(path)
