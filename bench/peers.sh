#!/usr/bin/env bash
# Compares `loglens process` with peer tools on one nginx combined access log.
#
# Generates LINES lines of nginx combined logs (`loglens generate --formats combined`),
# concatenates them into one file under /tmp so every tool reads the identical bytes, warms the
# page cache, then times each tool under /usr/bin/time -v (wall time, peak RSS, CPU):
#
#   loglens    loglens process FILE --format combined --data-dir D --json  (parse + write Parquet)
#   goaccess   goaccess FILE --log-format=COMBINED -o report.json          (full static report)
#   lnav       lnav -n -c ';SELECT minute, status, count(*) FROM access_log GROUP BY ...'
#   python-re  bench/python_re.py FILE: one compiled regex per line, count by status
#
# and checks that each tool saw every line (a WARNING line says when one did not).
#
# Then a template-mining section (issue #3): `loglens generate --formats syslog3164` writes
# MINE_LINES syslog lines into one file; `loglens-mine` (benches/src/bin) parses it, keeps the
# message parts and mines them on one core (fastest of RUNS), writing the same message parts
# to a file that bench/drain3_peer.py mines with Drain3 (pip drain3, default config); it prints
# both tools' lines/s and loglens/Drain3.
#
# Then the whole pipeline (issue #12): `loglens process --detect` on the demo's mixed logs
# (`loglens generate --lines PIPELINE_LINES --duration 7d --seed 42`, six formats, templates on,
# as `make demo` runs it), wall time from start to the last incident written, and peak RSS.
#
# Usage: bash bench/peers.sh            (or `make peers`)
# Environment:
#   LINES=2000000   lines to generate
#   RUNS=1          runs per tool; the fastest is reported (use 3 on a quiet machine)
#   SEED=1          generator seed
#   CORRUPT_RATE=0  fraction of lines the generator damages; 0 makes every line a valid request,
#                   so every tool must count all of them (the generator's own default is 0.0005)
#   THREADS=        loglens --threads (default: every core); peers are single-threaded
#   LOGLENS=        loglens binary (default: ${CARGO_TARGET_DIR:-target}/release/loglens,
#                   built with `cargo build --release -p loglens-cli` when missing)
#   PYTHON=/usr/bin/python3   interpreter of the python-re baseline
#   KEEP=0          1 keeps the scratch directory (generated file, outputs, timings)
#   TMPDIR=/tmp     where the scratch directory is created
#   MINE=1          0 skips the template-mining section; ONLY=mine runs nothing else
#   PIPELINE=1      0 skips the process --detect section; ONLY=pipeline runs nothing else
#   PIPELINE_LINES=1000000   lines of the demo data set for that section
#   MINE_LINES=1000000   syslog lines for the mining section
#   VENV_PY=        Python with drain3 (default: .venv/bin/python; drain3 is pip-installed
#                   into .venv when missing)
set -euo pipefail
export LC_ALL=C
shopt -u checkwinsize 2>/dev/null || true # bash must not overwrite LINES with the terminal height

N_REQUESTED=${LINES:-2000000}
RUNS=${RUNS:-1}
SEED=${SEED:-1}
CORRUPT_RATE=${CORRUPT_RATE:-0}
THREADS=${THREADS:-}
KEEP=${KEEP:-0}
PYTHON=${PYTHON:-/usr/bin/python3}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
LOGLENS=${LOGLENS:-$TARGET_DIR/release/loglens}

die() {
	echo "peers.sh: $*" >&2
	exit 1
}
[[ $N_REQUESTED =~ ^[0-9]+$ && $N_REQUESTED -gt 0 ]] || die "LINES must be a positive integer (got '$N_REQUESTED')"
[[ $RUNS =~ ^[0-9]+$ && $RUNS -gt 0 ]] || die "RUNS must be a positive integer (got '$RUNS')"
[[ -z $THREADS || $THREADS =~ ^[0-9]+$ ]] || die "THREADS must be a number (got '$THREADS')"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/loglens-peers.XXXXXX")
cleanup() {
	if [[ $KEEP == 1 ]]; then
		echo "kept scratch directory $WORK"
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

TIME_BIN=/usr/bin/time
if [[ ! -x $TIME_BIN ]]; then
	echo "note: /usr/bin/time missing (install with apt-get install time): peak RSS and CPU will show n/a"
	TIME_BIN=
fi

# --- loglens binary --------------------------------------------------------------------------
if [[ ! -x $LOGLENS ]]; then
	echo "building loglens (cargo build --release -p loglens-cli) ..."
	(cd "$ROOT" && cargo build --release -p loglens-cli) || die "building loglens failed"
	[[ -x $LOGLENS ]] || die "no loglens binary at $LOGLENS after the build (set LOGLENS=...)"
fi

# --- template mining: loglens-mine vs Drain3 (issue #3) ---------------------------------------
MINE=${MINE:-1}
ONLY=${ONLY:-}
MINE_LINES=${MINE_LINES:-1000000}
VENV_PY=${VENV_PY:-$ROOT/.venv/bin/python}
DRAIN3_VERSION=0.9.11
[[ $MINE_LINES =~ ^[0-9]+$ && $MINE_LINES -gt 0 ]] || die "MINE_LINES must be a positive integer (got '$MINE_LINES')"

mine_section() {
	echo
	echo "== template mining: loglens vs Drain3 on the message parts of one syslog file =="
	local miner=$TARGET_DIR/release/loglens-mine
	if [[ ! -x $miner ]]; then
		echo "building loglens-mine (cargo build --release -p loglens-benches --bin loglens-mine) ..."
		(cd "$ROOT" && cargo build --release -p loglens-benches --bin loglens-mine) || die "building loglens-mine failed"
	fi
	local dir=$WORK/mine file=$WORK/mine/syslog.log messages=$WORK/mine/messages.txt
	mkdir -p "$dir"
	"$LOGLENS" generate --out "$dir/gen" --lines "$MINE_LINES" --formats syslog3164 --seed "$SEED" \
		--corrupt-rate 0 >"$dir/generate.log" 2>&1 </dev/null || die "loglens generate --formats syslog3164 failed"
	find "$dir/gen/logs" -type f | sort | while read -r f; do
		if [[ $f == *.gz ]]; then gzip -dc -- "$f"; else cat -- "$f"; fi
	done >"$file"
	rm -rf "$dir/gen"
	echo "  file: $(wc -l <"$file") syslog lines, $(awk -v b="$(stat -c %s "$file")" 'BEGIN { printf "%.1f", b / 1e6 }') MB"
	"$miner" "$file" --format syslog3164 --runs "$RUNS" --messages-out "$messages" >"$dir/loglens.json" ||
		die "loglens-mine failed"
	local py=$VENV_PY
	if [[ ! -x $py ]]; then
		py=$(command -v python3 || true)
	fi
	local drain3=ok
	if ! "$py" -c 'import drain3' 2>/dev/null; then
		echo "  drain3 missing: $py -m pip install drain3==$DRAIN3_VERSION"
		"$py" -m pip install --quiet "drain3==$DRAIN3_VERSION" >"$dir/pip.log" 2>&1 || drain3="not installed (pip install drain3)"
	fi
	if [[ $drain3 == ok ]]; then
		"$py" "$ROOT/bench/drain3_peer.py" "$messages" --runs "$RUNS" >"$dir/drain3.json" || drain3="failed"
	fi
	local jpy=${JSON_PY:-python3}
	"$jpy" - "$dir/loglens.json" "$dir/drain3.json" "$drain3" <<'PY'
import json, sys
ll = json.load(open(sys.argv[1]))
state = sys.argv[3]
d3 = json.load(open(sys.argv[2])) if state == "ok" else None
fmt = "  {:<9} {:>9} {:>10} {:>12} {:>14} {:>9}"
print(fmt.format("tool", "lines", "seconds", "lines/s", "lines/CPU-s", "clusters"))
cpu = ll.get("lines_per_cpu_sec")
print(fmt.format("loglens", ll["lines"], f"{ll['seconds']:.3f}", f"{ll['lines_per_sec']:,.0f}",
                 f"{cpu:,.0f}" if cpu else "n/a", ll["clusters"]))
if d3:
    print(fmt.format("drain3", d3["lines"], f"{d3['seconds']:.3f}", f"{d3['lines_per_sec']:,.0f}", "-",
                     d3["clusters"]))
    if d3["lines"] != ll["lines"]:
        print(f"WARNING: drain3 mined {d3['lines']} messages, loglens {ll['lines']}")
    ratio = ll["lines_per_sec"] / d3["lines_per_sec"]
    print(f"  loglens/drain3: {ratio:.1f}x (wall clock, one core each; drain3 {d3['version']}, default config)")
else:
    print(f"  drain3: {state}")
print("  loglens: default MinerConfig; message parts parsed outside the timing, best of", ll["runs"])
PY
}

PIPELINE=${PIPELINE:-1}
PIPELINE_LINES=${PIPELINE_LINES:-1000000}
[[ $PIPELINE_LINES =~ ^[0-9]+$ && $PIPELINE_LINES -gt 0 ]] || die "PIPELINE_LINES must be a positive integer (got '$PIPELINE_LINES')"

# The demo's main step, end to end: parse, mine templates, write Parquet, detect.
pipeline_section() {
	echo
	echo "== loglens process --detect on the demo's mixed logs ($PIPELINE_LINES lines, 7 days, six formats) =="
	local dir=$WORK/pipeline
	"$LOGLENS" generate --out "$dir/gen" --lines "$PIPELINE_LINES" --duration 7d --seed 42 \
		>"$dir.generate.log" 2>&1 </dev/null || die "loglens generate failed (see $dir.generate.log)"
	local bytes
	bytes=$(find "$dir/gen/logs" -type f -exec cat {} + | wc -c)
	find "$dir/gen/logs" -type f -exec cat {} + >/dev/null
	local r best="" t0 t1 secs
	for ((r = 1; r <= RUNS; r++)); do
		rm -rf "$dir/data"
		t0=$EPOCHREALTIME
		if [[ -n $TIME_BIN ]]; then
			"$TIME_BIN" -v -o "$dir/time.run" "$LOGLENS" process --config "$dir/gen/loglens.toml" \
				--data-dir "$dir/data" --detect --json >"$dir/out.json" 2>"$dir/err" </dev/null || die "process --detect failed"
		else
			"$LOGLENS" process --config "$dir/gen/loglens.toml" --data-dir "$dir/data" --detect --json \
				>"$dir/out.json" 2>"$dir/err" </dev/null || die "process --detect failed"
		fi
		t1=$EPOCHREALTIME
		secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
		echo "  run $r: ${secs} s"
		if [[ -z $best ]] || awk -v s="$secs" -v b="$best" 'BEGIN { exit !(s < b) }'; then
			best=$secs
			[[ -z $TIME_BIN ]] || mv "$dir/time.run" "$dir/time"
		fi
	done
	local lines rss=n/a
	lines=$("$JSON_PY" -c 'import json, sys
d, _ = json.JSONDecoder().raw_decode(open(sys.argv[1]).read())
print(d["lines"])' "$dir/out.json")
	[[ -z $TIME_BIN ]] || rss=$(awk -F': ' '/Maximum resident set size/ { printf "%.1f", $2 / 1024 }' "$dir/time")
	awk -v n="$lines" -v s="$best" -v b="$bytes" -v rss="$rss" -v load="$(cut -d' ' -f1-3 /proc/loadavg)" 'BEGIN {
		printf "  %d lines, %.1f MB in %.2f s: %.0f lines/s, %.1f MB/s, peak RSS %s MB (best of runs; load %s)\n",
			n, b / 1e6, s, n / s, b / 1e6 / s, rss, load }'
	rm -rf "$dir"
}

if [[ $ONLY == pipeline ]]; then
	JSON_PY=$PYTHON
	[[ -x $JSON_PY ]] || JSON_PY=$(command -v python3 || true)
	mkdir -p "$WORK/pipeline"
	pipeline_section
	exit 0
fi

if [[ $ONLY == mine ]]; then
	JSON_PY=$PYTHON
	[[ -x $JSON_PY ]] || JSON_PY=$(command -v python3 || true)
	mine_section
	exit 0
fi

# --- the input file --------------------------------------------------------------------------
FILE=$WORK/access.log
GEN=$WORK/gen
echo "generating $N_REQUESTED lines of nginx combined logs ..."
generated=0
if "$LOGLENS" generate --out "$GEN" --lines "$N_REQUESTED" --formats combined --seed "$SEED" \
	--corrupt-rate "$CORRUPT_RATE" >"$WORK/generate.log" 2>&1 </dev/null; then
	# Every access log (plain or rotated .gz), in a stable order, into one file.
	mapfile -t logs < <(find "$GEN/logs" -type f -name 'access.log*' 2>/dev/null | sort)
	if ((${#logs[@]} > 0)); then
		for f in "${logs[@]}"; do
			if [[ $f == *.gz ]]; then gzip -dc -- "$f"; else cat -- "$f"; fi
			# A file whose last line lacks its newline must not merge with the next file.
			[[ $f == *.gz || -z $(tail -c 1 -- "$f") ]] || echo
		done >"$FILE"
		generated=${#logs[@]}
	fi
fi
if ((generated > 0)); then
	echo "  loglens generate: concatenated ${generated} access logs"
else
	echo "WARNING: 'loglens generate --formats combined' failed or wrote no logs/*/access.log;" \
		"falling back to the benchmark synthesizer (loglens-synth)"
	sed 's/^/  generate: /' "$WORK/generate.log" | tail -n 5
	SYNTH=$TARGET_DIR/release/loglens-synth
	(cd "$ROOT" && cargo build --release -p loglens-benches --bin loglens-synth) || die "building loglens-synth failed"
	"$SYNTH" combined "$N_REQUESTED" "$FILE" "$SEED"
fi
rm -rf "$GEN"
N=$(wc -l <"$FILE")
N=$((N + 0))
BYTES=$(stat -c %s "$FILE")
((N > 0)) || die "the generated file is empty"
[[ $N == "$N_REQUESTED" ]] || echo "note: the file has $N lines (requested $N_REQUESTED)"

# Warm the page cache so every tool reads from memory.
cat "$FILE" >/dev/null
cat "$FILE" >/dev/null

# --- measurement -----------------------------------------------------------------------------
declare -A SECS RSS CPU STATE PARSED
TOOLS=()

# measure NAME PREP CMD... : runs CMD RUNS times (PREP before each run, outside the timing),
# stdin from /dev/null, stdout to $WORK/NAME.out, stderr to $WORK/NAME.err; keeps the fastest.
measure() {
	local name=$1 prep=$2
	shift 2
	TOOLS+=("$name")
	local r t0 t1 secs status best="" tfile="$WORK/$name.time"
	for ((r = 1; r <= RUNS; r++)); do
		"$prep"
		status=0
		t0=$EPOCHREALTIME
		if [[ -n $TIME_BIN ]]; then
			"$TIME_BIN" -v -o "$tfile.run" "$@" >"$WORK/$name.out.run" 2>"$WORK/$name.err" </dev/null || status=$?
		else
			"$@" >"$WORK/$name.out.run" 2>"$WORK/$name.err" </dev/null || status=$?
		fi
		t1=$EPOCHREALTIME
		if ((status != 0)); then
			STATE[$name]="failed (exit $status)"
			echo "WARNING: $name failed with exit status $status; its stderr ends with:"
			tail -n 5 "$WORK/$name.err" | sed 's/^/    /'
			return 0
		fi
		secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
		echo "  $name run $r: ${secs} s"
		if [[ -z $best ]] || awk -v s="$secs" -v b="$best" 'BEGIN { exit !(s < b) }'; then
			best=$secs
			mv "$WORK/$name.out.run" "$WORK/$name.out"
			[[ -z $TIME_BIN ]] || mv "$tfile.run" "$tfile"
		fi
	done
	SECS[$name]=$best
	STATE[$name]=ok
	if [[ -n $TIME_BIN ]]; then
		RSS[$name]=$(awk -F': ' '/Maximum resident set size/ { printf "%.1f", $2 / 1024 }' "$tfile")
		CPU[$name]=$(awk -F': ' '/User time \(seconds\)/ { u = $2 } /System time \(seconds\)/ { s = $2 }
			END { printf "%.2f", u + s }' "$tfile")
	fi
}

skip() {
	TOOLS+=("$1")
	STATE[$1]="skipped"
	echo "$1: skipped: install with apt-get install $2"
}

# check_seen TOOL WHAT COUNT [TOLERANT]: the tool must have read every line of the file. With
# TOLERANT and damaged lines in the file, up to 1% may be missing (GoAccess does not count lines
# that start with '#' or hold NUL bytes, which damaged lines can).
check_seen() {
	if [[ $3 == "$N" ]]; then
		echo "  check: $1 $2 = $3 (every line)"
	elif [[ -n ${4:-} && $CORRUPT_RATE != 0 ]] && ((${3:-0} * 100 >= N * 99)); then
		echo "  check: $1 $2 = $3 of $N lines ($((N - $3)) damaged lines not counted)"
	else
		echo "WARNING: $1 did not process the whole file: $2 = $3, file lines = $N"
	fi
}

# check_parsed TOOL WHAT COUNT: lines the tool recognized as requests: all of them when
# CORRUPT_RATE=0, else at least 99% (the damaged lines are expected to fail).
check_parsed() {
	PARSED[$1]=$3
	if [[ $3 == "$N" ]]; then
		echo "  check: $1 $2 = $3 (every line)"
	elif [[ $CORRUPT_RATE != 0 ]] && ((${3:-0} * 100 >= N * 99)); then
		echo "  check: $1 $2 = $3 ($((N - $3)) lines not recognized; the file has damaged lines)"
	else
		echo "WARNING: $1 recognized only $3 of $N lines as requests ($2)"
	fi
}

# JSON field of a file, by a Python expression on `d`.
json() { "$JSON_PY" -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }
JSON_PY=$PYTHON
[[ -x $JSON_PY ]] || JSON_PY=$(command -v python3 || true)
[[ -n $JSON_PY ]] || die "python3 is needed to read the tools' JSON output (apt-get install python3)"

nothing() { :; }

echo
echo "timing on $(nproc) cores, $RUNS run(s) per tool, file $FILE: $N lines, $(awk -v b="$BYTES" 'BEGIN { printf "%.1f", b / 1e6 }') MB"

# loglens
LL_DATA=$WORK/loglens-data
prep_loglens() { rm -rf "$LL_DATA"; }
ll_args=(process "$FILE" --format combined --data-dir "$LL_DATA" --json)
[[ -z $THREADS ]] || ll_args+=(--threads "$THREADS")
measure loglens prep_loglens "$LOGLENS" "${ll_args[@]}"
if [[ ${STATE[loglens]} == ok ]]; then
	check_seen loglens lines "$(json "$WORK/loglens.out" 'd["lines"]')"
	check_parsed loglens parsed "$(json "$WORK/loglens.out" 'sum(d["parsed"].values())')"
fi
rm -rf "$LL_DATA"

# GoAccess: a complete static report (JSON), no real-time HTML.
if command -v goaccess >/dev/null; then
	GA_OUT=$WORK/goaccess-report.json
	prep_goaccess() { rm -f "$GA_OUT"; }
	measure goaccess prep_goaccess goaccess "$FILE" --log-format=COMBINED --no-global-config --no-progress -o "$GA_OUT"
	if [[ ${STATE[goaccess]} == ok ]]; then
		check_seen goaccess total_requests "$(json "$GA_OUT" 'd["general"]["total_requests"]')" tolerant
		check_parsed goaccess valid_requests "$(json "$GA_OUT" 'd["general"]["valid_requests"]')"
	fi
	rm -f "$GA_OUT"
else
	skip goaccess goaccess
fi

# lnav, headless: requests by minute and status over the access_log table, as CSV on stdout.
if command -v lnav >/dev/null; then
	LNAV_HOME=$WORK/lnav-home
	prep_lnav() { rm -rf "$LNAV_HOME" && mkdir -p "$LNAV_HOME"; }
	measure lnav prep_lnav env HOME="$LNAV_HOME" XDG_CONFIG_HOME="$LNAV_HOME/.config" lnav -n \
		-c ";SELECT strftime('%Y-%m-%d %H:%M', log_time) AS minute, sc_status, count(*) AS requests FROM access_log GROUP BY minute, sc_status ORDER BY minute, sc_status" \
		-c ":write-csv-to -" "$FILE"
	if [[ ${STATE[lnav]} == ok ]]; then
		# Lines lnav does not recognize still become access_log rows, with a NULL status.
		check_seen lnav "rows of access_log" "$(awk -F, 'NR > 1 { s += $NF } END { print s + 0 }' "$WORK/lnav.out")"
		check_parsed lnav "rows with a status" "$(awk -F, 'NR > 1 && $2 != "" { s += $NF } END { print s + 0 }' "$WORK/lnav.out")"
	fi
	rm -rf "$LNAV_HOME"
else
	skip lnav lnav
fi

# Plain Python: one compiled regex per line.
if [[ -x $PYTHON ]]; then
	measure python-re nothing "$PYTHON" "$ROOT/bench/python_re.py" "$FILE"
	if [[ ${STATE[python-re]} == ok ]]; then
		check_seen python-re lines "$(json "$WORK/python-re.out" 'd["lines"]')"
		check_parsed python-re matched "$(json "$WORK/python-re.out" 'd["matched"]')"
	fi
else
	skip python-re python3
fi

# --- report ----------------------------------------------------------------------------------
echo
versions="loglens $("$LOGLENS" --version 2>/dev/null | awk '{ print $NF }' || true)"
if command -v goaccess >/dev/null; then
	versions+=" | goaccess $(goaccess -V 2>/dev/null | awk 'NR == 1 { sub(/\.$/, "", $NF); print $NF }' || true)"
fi
if command -v lnav >/dev/null; then versions+=" | $(lnav -V 2>/dev/null || true)"; fi
if [[ -x $PYTHON ]]; then versions+=" | $("$PYTHON" --version 2>&1 || true)"; fi
echo "versions: $versions"
echo "$(uname -m), $(nproc) cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || echo unknown CPU))," \
	"$N lines, $(awk -v b="$BYTES" 'BEGIN { printf "%.1f", b / 1e6 }') MB, corrupt rate $CORRUPT_RATE, page cache warm, best of $RUNS"
echo "loglens parses and writes Parquet on ${THREADS:-all} thread(s); the peers use one core (CPU s shows the total)."
echo "lines/s and MB/s are over all $N lines of the file; parsed = lines each tool recognized as requests."
echo
fmt='%-10s %9s %12s %9s %12s %8s %10s %14s\n'
# shellcheck disable=SC2059 # the format is a constant
printf "$fmt" tool seconds lines/s MB/s "peak RSS MB" "CPU s" parsed "loglens/peer"
ll_lps=""
[[ ${STATE[loglens]:-} != ok ]] || ll_lps=$(awk -v n="$N" -v s="${SECS[loglens]}" 'BEGIN { printf "%.0f", n / s }')
for tool in "${TOOLS[@]}"; do
	if [[ ${STATE[$tool]} != ok ]]; then
		# shellcheck disable=SC2059
		printf "$fmt" "$tool" "-" "-" "-" "-" "-" "-" "${STATE[$tool]}"
		continue
	fi
	s=${SECS[$tool]}
	lps=$(awk -v n="$N" -v s="$s" 'BEGIN { printf "%.0f", n / s }')
	mbps=$(awk -v b="$BYTES" -v s="$s" 'BEGIN { printf "%.1f", b / 1e6 / s }')
	ratio=n/a
	[[ -z $ll_lps ]] || ratio=$(awk -v a="$ll_lps" -v b="$lps" 'BEGIN { printf "%.2fx", a / b }')
	# shellcheck disable=SC2059
	printf "$fmt" "$tool" "$s" "$lps" "$mbps" "${RSS[$tool]:-n/a}" "${CPU[$tool]:-n/a}" "${PARSED[$tool]:-n/a}" "$ratio"
done

[[ $MINE == 0 ]] || mine_section
if [[ $PIPELINE != 0 ]]; then
	mkdir -p "$WORK/pipeline"
	pipeline_section
fi
