#!/usr/bin/env bash
# bench/run.sh — berth vs CNCF Distribution on this machine (see bench/README.md).
#   make bench            full run (a few minutes)
#   make bench QUICK=1    short run (~1 minute)
# Builds bench/loadgen, then bench/bench.py does the work. Both registries are stopped on any exit.
set -euo pipefail
cd "$(dirname "$0")/.."
work=build/bench
mkdir -p "$work"

cleanup() {
	# bench.py stops its servers itself; this catches a hard death of the Python process.
	if [ -f "$work/pids" ]; then
		while read -r pid name; do
			if [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "$name"; then
				echo "bench: stopping leftover $name (pid $pid)" >&2
				kill "$pid" 2>/dev/null || true
			fi
		done <"$work/pids"
		rm -f "$work/pids"
	fi
	rm -rf /dev/shm/berth-bench-*
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

[ -x build/release/berth ] || { echo "bench: build/release/berth missing (make build)" >&2; exit 1; }
cc -O2 -Wall -Wextra -o "$work/loadgen" bench/loadgen.c -lcrypto -lpthread

python3 bench/bench.py
