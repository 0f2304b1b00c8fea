#!/bin/bash
# usage: threads.sh PID SECS  -> per-thread CPU share over the window, plus fdatasync count
PID=$1; S=$2
declare -A a
for t in /proc/$PID/task/*; do tid=${t##*/}; a[$tid]=$(awk '{print $14+$15}' $t/stat); done
perf stat -e 'syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync' -p $PID -- sleep $S 2>&1 | grep -E 'sys_enter' 
for t in /proc/$PID/task/*; do tid=${t##*/}; n=$(cat $t/comm); b=$(awk '{print $14+$15}' $t/stat); echo "$n $(echo "(${b}-${a[$tid]:-0})/100/$S" | bc -l | cut -c1-5)"; done | sort | awk '{s[$1]+=$2; c[$1]++} END {for (k in s) print k, c[k], s[k]}'
