#!/usr/bin/env bash
# Peak memory of `loglens process --detect` as the input grows: the pipeline streams (a few
# chunks in flight, bounded writers, metric partials per bucket), so peak RSS should stay flat
# from 1M to 10M lines (goal: within 15%, under 500 MB).
#
# For each size in LINES: `loglens generate` a mixed-format data set (the generator's default
# streams), process it under /usr/bin/time -v, record wall time and peak RSS, then delete the
# generated logs and the data directory before the next size.
#
# Usage: bash bench/memory.sh
# Environment:
#   LINES="1000000 10000000"   sizes to measure (space- or comma-separated)
#   SEED=1                     generator seed
#   DURATION=                  time span of the generated logs (generate --duration; default a
#                              day): DURATION=7d shows that memory does not grow with the span
#   THREADS=                   loglens --threads (default: every core)
#   LOGLENS=                   loglens binary (default: ${CARGO_TARGET_DIR:-target}/release/loglens,
#                              built with `cargo build --release -p loglens-cli` when missing)
#   DETECT=1                   0 measures `process` alone (no --detect)
#   KEEP=0                     1 keeps the scratch directory of the last size
#   TMPDIR=/tmp                where the scratch directory is created (10M lines need ~3 GB)
set -euo pipefail
export LC_ALL=C
shopt -u checkwinsize 2>/dev/null || true # bash must not overwrite LINES with the terminal height

SIZES=${LINES:-1000000 10000000}
SEED=${SEED:-1}
DURATION=${DURATION:-}
THREADS=${THREADS:-}
KEEP=${KEEP:-0}
DETECT=${DETECT:-1}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
LOGLENS=${LOGLENS:-$TARGET_DIR/release/loglens}

die() {
	echo "memory.sh: $*" >&2
	exit 1
}
read -r -a sizes <<<"${SIZES//,/ }"
((${#sizes[@]} > 0)) || die "LINES lists no sizes"
for n in "${sizes[@]}"; do
	[[ $n =~ ^[0-9]+$ && $n -gt 0 ]] || die "LINES must list positive integers (got '$n')"
done
[[ -z $THREADS || $THREADS =~ ^[0-9]+$ ]] || die "THREADS must be a number (got '$THREADS')"
[[ -x /usr/bin/time ]] || die "/usr/bin/time is needed for peak RSS: install with apt-get install time"
PY=$(command -v python3 || true)
[[ -n $PY ]] || die "python3 is needed to read loglens's JSON summary (apt-get install python3)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/loglens-memory.XXXXXX")
cleanup() {
	if [[ $KEEP == 1 ]]; then
		echo "kept scratch directory $WORK"
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ ! -x $LOGLENS ]]; then
	echo "building loglens (cargo build --release -p loglens-cli) ..."
	(cd "$ROOT" && cargo build --release -p loglens-cli) || die "building loglens failed"
	[[ -x $LOGLENS ]] || die "no loglens binary at $LOGLENS after the build (set LOGLENS=...)"
fi

# generate N DIR: the generator's default mixed streams; falls back to the benchmark
# synthesizer (every built-in format, one file each) when `loglens generate` is unavailable.
generate() {
	local n=$1 dir=$2
	local span=()
	[[ -z $DURATION ]] || span=(--duration "$DURATION")
	if "$LOGLENS" generate --out "$dir" --lines "$n" --seed "$SEED" "${span[@]}" >"$WORK/generate.log" 2>&1 </dev/null &&
		[[ -n $(find "$dir/logs" -type f -print -quit 2>/dev/null) ]]; then
		return 0
	fi
	echo "WARNING: 'loglens generate' failed or wrote no logs; falling back to loglens-synth (7 formats)"
	tail -n 5 "$WORK/generate.log" | sed 's/^/  generate: /'
	rm -rf "$dir"
	mkdir -p "$dir/logs"
	local synth=$TARGET_DIR/release/loglens-synth
	if [[ ! -x $synth ]]; then
		(cd "$ROOT" && cargo build --release -p loglens-benches --bin loglens-synth) || die "building loglens-synth failed"
	fi
	local formats=(combined common syslog3164 syslog5424 json logfmt pylog) i share
	for i in "${!formats[@]}"; do
		share=$((n / ${#formats[@]} + (i < n % ${#formats[@]} ? 1 : 0)))
		"$synth" "${formats[$i]}" "$share" "$dir/logs/${formats[$i]}.log" "$((SEED + i))" 2>/dev/null
	done
}

declare -a ROWS
for n in "${sizes[@]}"; do
	gen=$WORK/gen-$n
	data=$WORK/data-$n
	echo "generating $n lines (mixed formats) ..."
	generate "$n" "$gen"
	args=(process --data-dir "$data" --json)
	[[ $DETECT == 0 ]] || args+=(--detect)
	if [[ -f $gen/loglens.toml ]]; then
		args+=(--config "$gen/loglens.toml") # the generator's labels and formats per input
	else
		args+=("$gen/logs")
	fi
	[[ -z $THREADS ]] || args+=(--threads "$THREADS")
	find "$gen/logs" -type f -exec cat {} + >/dev/null # warm the page cache
	echo "processing $n lines ..."
	status=0
	t0=$EPOCHREALTIME
	/usr/bin/time -v -o "$WORK/time" "$LOGLENS" "${args[@]}" >"$WORK/summary.json" 2>"$WORK/stderr" </dev/null || status=$?
	t1=$EPOCHREALTIME
	if ((status != 0)); then
		echo "WARNING: loglens process failed on $n lines (exit $status); its stderr ends with:"
		tail -n 5 "$WORK/stderr" | sed 's/^/    /'
		ROWS+=("$n - - - - failed - - -")
	else
		# With --detect the output is two JSON documents: the process summary, then detect's.
		read -r lines bytes parsed unparsed < <("$PY" -c 'import json, sys
d, _ = json.JSONDecoder().raw_decode(open(sys.argv[1]).read())
print(d["lines"], d["bytes"], sum(d["parsed"].values()), sum(d["unparsed"].values()))' "$WORK/summary.json")
		secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
		rss=$(awk -F': ' '/Maximum resident set size/ { printf "%.1f", $2 / 1024 }' "$WORK/time")
		out_mb=$(du -sb "$data" | awk '{ printf "%.1f", $1 / 1e6 }')
		[[ $lines == "$n" ]] || echo "note: loglens read $lines lines for LINES=$n"
		ROWS+=("$n $lines $(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1e6 }') $secs $(awk -v n="$lines" -v s="$secs" 'BEGIN { printf "%.0f", n / s }') $rss $out_mb $parsed $unparsed")
		echo "  $lines lines in $secs s, peak RSS $rss MB"
	fi
	if [[ $KEEP != 1 ]]; then rm -rf "$gen" "$data"; fi
done

echo
what="loglens process"
[[ $DETECT == 0 ]] || what="loglens process --detect"
echo "$what peak memory, logs over ${DURATION:-1d}, $(nproc) cores, threads ${THREADS:-all}, page cache warm, load $(cut -d' ' -f1-3 /proc/loadavg)"
fmt='%-12s %12s %10s %9s %12s %12s %11s %12s %10s\n'
# shellcheck disable=SC2059 # the format is a constant
printf "$fmt" LINES "lines read" "input MB" seconds lines/s "peak RSS MB" "Parquet MB" parsed unparsed
first_rss=""
last_rss=""
for row in "${ROWS[@]}"; do
	read -r -a f <<<"$row"
	# shellcheck disable=SC2059
	printf "$fmt" "${f[@]}"
	if [[ ${f[5]} != "-" ]]; then
		[[ -n $first_rss ]] || first_rss=${f[5]}
		last_rss=${f[5]}
	fi
done
if [[ -n $first_rss && ${#ROWS[@]} -gt 1 ]]; then
	awk -v a="$first_rss" -v b="$last_rss" -v n0="${sizes[0]}" -v n1="${sizes[-1]}" \
		'BEGIN { printf "peak RSS %.1f MB -> %.1f MB (x%.2f) while the input grew x%.1f\n", a, b, b / a, n1 / n0 }'
fi
