#!/usr/bin/env bash
# Runs every test suite and ends with one line "N passed, N failed" summing them all.
# Each suite prints "<suite>: N passed, N failed" as its last line; a suite that dies without
# that line counts as one failure.
set -u
cd "$(dirname "$0")/.."
total_p=0
total_f=0
log_dir=build/test-logs
mkdir -p "$log_dir"

run_suite() { # name, command...
	local name=$1; shift
	local log="$log_dir/$name.log"
	echo "== $name"
	"$@" >"$log" 2>&1
	local rc=$?
	local line
	line=$(grep -E '^[A-Za-z0-9_./-]+: [0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
	if [ -z "$line" ]; then
		tail -n 40 "$log"
		echo "$name: died (exit $rc) without a summary; counted as 1 failure"
		total_f=$((total_f + 1))
		return
	fi
	local p f
	p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed.*/\1/')
	f=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed.*/\2/')
	if [ "$f" != 0 ] || [ "$rc" != 0 ]; then
		grep -E 'FAIL|not ok|Error|ERROR' "$log" | head -n 40
		[ "$f" = 0 ] && f=1
	fi
	echo "   $name: $p passed, $f failed"
	total_p=$((total_p + p))
	total_f=$((total_f + f))
}

for t in build/asan/tests/test_*; do
	[ -x "$t" ] || continue
	run_suite "unit-$(basename "$t")" "$t"
done
for t in tests/e2e/test_*.py; do
	[ -f "$t" ] || continue
	n=$(basename "$t" .py)
	run_suite "e2e-${n#test_}" python3 "$t" --berth build/release/berth
	# The same suite against the ASan+UBSan build: any sanitizer report fails the run.
	if grep -q 'ASAN_SUITE' "$t"; then
		run_suite "e2e-${n#test_}-asan" python3 "$t" --berth build/asan/berth
	fi
done
for t in tests/e2e/test_*.sh; do
	[ -f "$t" ] || continue
	n=$(basename "$t" .sh)
	run_suite "e2e-${n#test_}" bash "$t" build/release/berth
done

# A short libFuzzer pass over every parser (tests/fuzz/run.sh builds the targets with clang; a
# machine where that cannot work fails this suite rather than skipping it).
run_suite fuzz env FUZZ_SECONDS=8 bash tests/fuzz/run.sh

echo "logs: $log_dir/"
echo "$total_p passed, $total_f failed"
[ "$total_f" = 0 ]
