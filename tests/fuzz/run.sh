#!/usr/bin/env bash
# Builds the libFuzzer targets (make fuzz-build) and runs each for FUZZ_SECONDS (default 60):
# first on its saved crashes (tests/fuzz/regressions/<name>/), then fuzzing a scratch copy of its
# seed corpus (build/fuzz/corpus-<name>) so the committed seeds stay small. A harness passes when
# it ran its time without a crash. Ends with "fuzz: N passed, N failed".
#   tests/fuzz/run.sh                 every harness
#   tests/fuzz/run.sh ref route       only these
# A machine whose clang cannot build libFuzzer targets fails every harness, loudly: a fuzz pass
# that silently did nothing would read as a clean one.
set -u
cd "$(dirname "$0")/../.."

secs=${FUZZ_SECONDS:-60}
out=build/fuzz
fcc=${FUZZ_CC:-clang}
mkdir -p "$out/logs" "$out/artifacts"

if (($#)); then
	names=("$@")
else
	names=()
	for f in tests/fuzz/fuzz_*.c; do
		n=$(basename "$f" .c)
		names+=("${n#fuzz_}")
	done
fi
passed=0
failed=0

summary() {
	echo "fuzz: $passed passed, $failed failed"
	[ "$failed" = 0 ]
	exit
}

# Toolchain probe: the smallest libFuzzer target, with the sanitizers the harnesses use. In a
# directory of its own, so two runs at once do not trip over each other's probe.
probe_dir=$(mktemp -d "${TMPDIR:-/tmp}/berth-fuzz-probe.XXXXXX") || exit 1
trap 'rm -rf "$probe_dir"' EXIT
probe_src=$probe_dir/probe.c
printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
	'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
	'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' \
	>"$probe_src"
if ! probe_err=$("$fcc" -fsanitize=fuzzer,address,undefined "$probe_src" -o "$probe_dir/probe" 2>&1) ||
	! "$probe_dir/probe" -runs=1 >/dev/null 2>&1; then
	echo "FAIL fuzz: '$fcc -fsanitize=fuzzer' does not work on this machine:" >&2
	echo "$probe_err" | tail -n 5 >&2
	echo "FAIL fuzz: install clang and libclang-rt-14-dev (bash scripts/deps.sh fuzz)" >&2
	failed=${#names[@]}
	summary
fi

bins=()
for n in "${names[@]}"; do
	if [ ! -f "tests/fuzz/fuzz_$n.c" ]; then
		echo "FAIL fuzz_$n: no tests/fuzz/fuzz_$n.c"
		failed=$((failed + 1))
		continue
	fi
	bins+=("$out/fuzz_$n")
done
if ((${#bins[@]})) && ! make -s --no-print-directory FUZZ_CC="$fcc" "${bins[@]}"; then
	echo "FAIL fuzz: building the harnesses failed"
	failed=$((failed + ${#bins[@]}))
	summary
fi

# Last libFuzzer status line's "cov: ft: corp: exec/s:" fields, for the report.
stats() {
	grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$1" | tail -n 1 |
		grep -oE '(cov|ft|corp|exec/s): [^ ]+' | tr '\n' ' '
}

for n in "${names[@]}"; do
	bin=$out/fuzz_$n
	[ -x "$bin" ] || continue
	log=$out/logs/$n.log
	art=$out/artifacts/$n/
	corpus=$out/corpus-$n
	dict=()
	[ -f "tests/fuzz/$n.dict" ] && dict=("-dict=tests/fuzz/$n.dict")
	rm -rf "$corpus" "$art"
	mkdir -p "$corpus" "$art"
	[ -d "tests/fuzz/corpus/$n" ] && cp -R "tests/fuzz/corpus/$n"/. "$corpus"/

	# Saved crashes first: each must now run clean.
	regs=()
	if [ -d "tests/fuzz/regressions/$n" ]; then
		while IFS= read -r -d '' r; do regs+=("$r"); done \
			< <(find "tests/fuzz/regressions/$n" -type f ! -name '*.md' -print0 | sort -z)
	fi
	if ((${#regs[@]})) && ! "$bin" -runs=1 -timeout=10 "${regs[@]}" >"$log" 2>&1; then
		echo "FAIL fuzz_$n: a saved regression input crashes again (log: $log)"
		grep -E 'Running:|ERROR|runtime error|invariant' "$log" | tail -n 6
		failed=$((failed + 1))
		continue
	fi

	"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$art" "${dict[@]}" "$corpus" >>"$log" 2>&1
	rc=$?
	repro=$(grep -oE "Test unit written to [^ ]+" "$log" | tail -n 1 | sed 's/^Test unit written to //')
	if [ "$rc" != 0 ] || [ -n "$repro" ]; then
		echo "FAIL fuzz_$n: exit $rc; reproducer: ${repro:-none written}; log: $log"
		grep -E 'ERROR: |runtime error|invariant broken|SUMMARY' "$log" | head -n 6
		[ -n "$repro" ] && echo "   replay: $bin $repro"
		failed=$((failed + 1))
		continue
	fi
	echo "ok fuzz_$n: ${secs}s, ${#regs[@]} regressions replayed, $(stats "$log")"
	passed=$((passed + 1))
done
summary
