# Background disk probe: 8 KiB write + fdatasync every 50 ms on its own file; logs each
# sync over 15 ms with its wall-clock end time (UTC), until killed.
import os, time, sys
path = "/tmp/prof/fsprobe.bin"
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
os.posix_fallocate(fd, 0, 1 << 20); os.fsync(fd)
buf = os.urandom(8192); off = 0; n = 0
out = open(sys.argv[1], "w", buffering=1)
while True:
    time.sleep(0.05)
    os.pwrite(fd, buf, off); off = (off + 8192) % (1 << 20)
    t0 = time.monotonic(); os.fdatasync(fd); d = (time.monotonic() - t0) * 1e3; n += 1
    if d > 15:
        t = time.time()
        out.write(time.strftime("%H:%M:%S", time.gmtime(t)) + f".{int(t*1000)%1000:03d} {d:.1f} ms (n={n})\n")
