#!/bin/bash
# usage: run.sh BIN [seconds] [extra env...]
BIN=$1; SECS=${2:-12}; shift 2
KEY=bench-admin-key-0123456789abcdef
python3 /work/shared/peers/sink.py --port 18090 > /tmp/prof/sink.log 2>&1 &
SINK=$!
D=$(mktemp -d)
sleep 0.5
env "$@" REZ_DATA_DIR=$D REZ_BIND=127.0.0.1:18080 REZ_NTFY_URL=http://127.0.0.1:18090/topic REZ_API_KEY=$KEY REZ_OUTBOUND_ALLOW_LOOPBACK=true REZ_LOG=warn $BIN serve > /tmp/prof/rez.log 2>&1 &
REZ=$!
for i in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:18080/api/health && break; sleep 0.1; done
if [ -n "$RENICE" ]; then for t in /proc/$REZ/task/*; do n=$(cat $t/comm); case "$n" in $RENICE_MATCH) renice -n $RENICE -p ${t##*/} >/dev/null;; esac; done; fi
wrk -t1 -c2 -d2s -s /tmp/prof/post.lua http://127.0.0.1:18080 > /dev/null
sleep 1
c0=$(curl -s http://127.0.0.1:18090/_stats | python3 -c 'import sys,json;print(json.load(sys.stdin)["count"])')
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
read _ u n sy id io irq sirq st _ < /proc/stat; idle0=$((id+io)); st0=$st; tot0=$((u+n+sy+id+io+irq+sirq+st)); r0=$(cpu $REZ); s0=$(cpu $SINK); t0=$(date +%s.%N)
wrk -t1 -c32 -d${SECS}s -s /tmp/prof/post.lua http://127.0.0.1:18080 > /tmp/prof/wrk.out &
WRK=$!
sleep 0.2; w0=$(cpu $WRK); [ -n "$THREADS" ] && (sleep 2; /tmp/prof/threads.sh $REZ 6 > /tmp/prof/threads.out) &
[ -n "$SCHED" ] && (sleep 2; /tmp/prof/sched.sh $REZ 6 > /tmp/prof/sched.out) &
[ -n "$WALWATCH" ] && (for k in 1 2 3 4 5 6 7 8 9 10; do sleep 1; stat -c %s $D/rez.db-wal; done > /tmp/prof/wal.out) &
[ -n "$FSYNCS" ] && (sleep 2; perf trace -s -e fdatasync,pwrite64 -p $REZ -- sleep 6 > /tmp/prof/fsyncs.out 2>&1) &
[ -n "$PERF" ] && (sleep 2; perf record -F 499 --call-graph dwarf,16384 -o /tmp/prof/perf.data -p $REZ -- sleep 6 > /dev/null 2>&1) &
while kill -0 $WRK 2>/dev/null; do wl=$(cpu $WRK 2>/dev/null || echo $wl); sleep 0.2; done
t1=$(date +%s.%N); read _ u n sy id io irq sirq st _ < /proc/stat; idle1=$((id+io)); st1=$st; tot1=$((u+n+sy+id+io+irq+sirq+st)); r1=$(cpu $REZ); s1=$(cpu $SINK)
c1=$(curl -s http://127.0.0.1:18090/_stats | python3 -c 'import sys,json;print(json.load(sys.stdin)["count"])')
req=$(grep -o 'Requests/sec: *[0-9.]*' /tmp/prof/wrk.out | awk '{print $2}')
el=$(echo "$t1 - $t0" | bc)
echo "accepted/s=$req delivered/s=$(echo "($c1-$c0)/$el" | bc) rezcpu=$(echo "($r1-$r0)/100/$el" | bc -l | cut -c1-5) sinkcpu=$(echo "($s1-$s0)/100/$el" | bc -l | cut -c1-5) wrkcpu~$(echo "($wl-$w0)/100/$el" | bc -l | cut -c1-5) idle=$(echo "2*($idle1-$idle0)/($tot1-$tot0)" | bc -l | cut -c1-5)cores steal=$(echo "2*($st1-$st0)/($tot1-$tot0)" | bc -l | cut -c1-5)"
grep -E 'Non-2xx|Socket errors' /tmp/prof/wrk.out
curl -s -H "Authorization: Bearer $KEY" http://127.0.0.1:18080/metrics > /tmp/prof/metrics.out; kill $REZ; sleep 1.5; kill $SINK; rm -rf $D
