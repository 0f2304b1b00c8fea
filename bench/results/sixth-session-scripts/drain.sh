#!/bin/bash
# Fill a backlog with delivery throttled, restart with default settings, time the drain.
BIN=$1; shift
KEY=bench-admin-key-0123456789abcdef
D=$(mktemp -d)
python3 /work/shared/peers/sink.py --port 18090 > /tmp/prof/sink.log 2>&1 & SINK=$!
sleep 0.5
start() { env "$@" REZ_DATA_DIR=$D REZ_BIND=127.0.0.1:18080 REZ_NTFY_URL=http://127.0.0.1:18090/topic REZ_API_KEY=$KEY REZ_OUTBOUND_ALLOW_LOOPBACK=true REZ_LOG=warn $BIN serve >> /tmp/prof/rez.log 2>&1 & REZ=$!; for i in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:18080/api/health && break; sleep 0.1; done; }
start REZ_NOTIFY_CONCURRENCY=1
wrk -t1 -c32 -d8s -s /tmp/prof/post.lua http://127.0.0.1:18080 | grep Requests/sec
kill $REZ; while kill -0 $REZ 2>/dev/null; do sleep 0.1; done
cnt() { curl -s http://127.0.0.1:18090/_stats | python3 -c 'import sys,json;print(json.load(sys.stdin)["count"])'; }
c0=$(cnt); echo "delivered before restart: $c0"
start "$@"
read _ u n sy id io irq sirq st _ < /proc/stat; st0=$st; tot0=$((u+n+sy+id+io+irq+sirq+st)); t0=$(date +%s.%N); r0=$(awk '{print $14+$15}' /proc/$REZ/stat); s0=$(awk '{print $14+$15}' /proc/$SINK/stat)
[ -n "$PERF" ] && (perf record -F 499 --call-graph dwarf,16384 -o /tmp/prof/perf-drain.data -p $REZ -- sleep 4 > /dev/null 2>&1 &)
[ -n "$SCHED" ] && (/tmp/prof/sched.sh $REZ 4 > /tmp/prof/sched-drain.out &)
[ -n "$FSYNCS" ] && (perf stat -e syscalls:sys_enter_fdatasync -p $REZ -- sleep 4 2>&1 | awk "/fdatasync/ {print \$1/4}" > /tmp/prof/fsyncs-drain.out &)
sleep 5; curl -s -H "Authorization: Bearer $KEY" http://127.0.0.1:18080/metrics > /tmp/prof/metrics-drain.txt
read _ u n sy id io irq sirq st _ < /proc/stat; st1=$st; tot1=$((u+n+sy+id+io+irq+sirq+st)); c1=$(cnt); t1=$(date +%s.%N); r1=$(awk '{print $14+$15}' /proc/$REZ/stat); s1=$(awk '{print $14+$15}' /proc/$SINK/stat)
el=$(echo "$t1-$t0"|bc)
echo "drain delivered/s over 5 s (incl. startup): $(echo "($c1-$c0)/$el"|bc)  rezcpu=$(echo "($r1-$r0)/100/$el"|bc -l|cut -c1-5) sinkcpu=$(echo "($s1-$s0)/100/$el"|bc -l|cut -c1-5) steal=$(echo "2*($st1-$st0)/($tot1-$tot0)" | bc -l | cut -c1-5) delivered=$((c1-c0))"
kill $REZ; sleep 1; kill $SINK; rm -rf $D
