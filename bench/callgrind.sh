#!/usr/bin/env bash
# Instructions per operation of bench/call_path.py, counted by callgrind (load-independent,
# unlike wall clock on a shared machine): the run with COUNT operations minus the run
# with none, divided by COUNT.
#   bench/callgrind.sh PYTHON PATH [COUNT]      PATH: call, pubsub-rtt or pubsub-fanout
#   LOOP=asyncio bench/callgrind.sh .venv/bin/python call       # the pure build on asyncio
# PYTHON is the interpreter of the build to measure (.venv-compiled/bin/python for the
# compiled wheel, .venv/bin/python for the pure one); LOOP is uvloop unless set.
set -euo pipefail
python=$1 path=$2 count=${3:-2000} loop=${LOOP:-uvloop}
script=${CALLPATH:-$(dirname "$0")/call_path.py}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
instructions() {
  PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file=/dev/null \
    "$python" "$script" --path "$path" --count "$1" --loop "$loop" >"$out/log" 2>&1
  grep -o "refs: *[0-9,]*" "$out/log" | tr -d ', ' | cut -d: -f2
}
with=$(instructions "$count")
without=$(instructions 0)
echo "$path $(((with - without) / count)) instructions per operation ($python, $loop)"
