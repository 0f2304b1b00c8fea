#!/bin/bash
# alone 120 s, rez x3 (~150 s), alone 120 s, rez x3; the probe runs throughout.
cd /tmp/prof
python3 fsprobe.py probe-b.log & P=$!
mark() { echo "$(date -u +%H:%M:%S.%3N) $1" >> marks-b.log; }
: > marks-b.log
for round in 1 2; do
  mark alone-start; sleep 120; mark alone-end
  mark rez-start
  for i in 1 2 3; do timeout 300 python3 stall.py /tmp/prof/rez-instr > stall-b$round$i.out 2>&1; sed 's/\x1b\[[0-9;]*m//g' rez.log > rez-b$round$i.log; done
  mark rez-end
done
kill $P
