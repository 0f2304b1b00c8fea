#!/bin/bash
# usage: sched.sh PID SECS -> per thread: cpu ms/s, runqueue-wait ms/s, switches/s
PID=$1; S=$2
declare -A a b
for t in /proc/$PID/task/*; do tid=${t##*/}; read x y z < $t/schedstat; a[$tid]=$x; b[$tid]=$y; done
sleep $S
for t in /proc/$PID/task/*; do tid=${t##*/}; n=$(cat $t/comm); read x y z < $t/schedstat; echo "$n $tid $(( (x-${a[$tid]:-0})/1000000/S )) $(( (y-${b[$tid]:-0})/1000000/S ))"; done | awk '$3>5 || $4>5 {print "thread", $1, $2, "cpu_ms/s", $3, "runq_wait_ms/s", $4}'
