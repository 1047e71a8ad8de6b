#!/usr/bin/env bash
# Benchmark of the DORA report (sluice-dora): generates a synthetic ledger of
# ENTRIES deployments (default 1,000,000) across 50 apps x 3 environments,
# with commits, rollbacks, failures, reverts and hotfixes, then times the
# report over it and prints wall time and peak RSS.
#
# Targets: under 2 s and under 500 MB. A script, not a timed test: it exits 1
# on a miss only with STRICT=1.
#
#   scripts/bench-dora.sh            # ledger cached in $BENCH_DIR (default /tmp/sluice-bench-dora)
#   ENTRIES=100000 scripts/bench-dora.sh
set -euo pipefail

cd "$(dirname "$0")/.."
ENTRIES="${ENTRIES:-1000000}"
APPS="${APPS:-50}"
BENCH_DIR="${BENCH_DIR:-${TMPDIR:-/tmp}/sluice-bench-dora}"
TARGET_SECONDS="${TARGET_SECONDS:-2}"
TARGET_MB="${TARGET_MB:-500}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

if [ ! -x /usr/bin/time ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing GNU time (apt-get install time)" >&2
    apt-get install -y -qq time >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get install -y -qq time >/dev/null; }
  else
    echo "error: /usr/bin/time (GNU time) is needed: apt-get install time" >&2
    exit 2
  fi
fi

echo "building (release)..." >&2
cargo build --release --quiet -p sluice-dora --example gen_ledger --example report
bin="$CARGO_TARGET_DIR/release/examples"

mkdir -p "$BENCH_DIR"
ledger="$BENCH_DIR/ledger-$ENTRIES-$APPS.jsonl"
if [ ! -s "$ledger" ]; then
  echo "generating $ENTRIES entries into $ledger ..." >&2
  "$bin/gen_ledger" "$ledger.tmp" "$ENTRIES" "$APPS"
  mv "$ledger.tmp" "$ledger"
fi
size_mb=$(( $(stat -c %s "$ledger") / 1024 / 1024 ))
echo "ledger: $(wc -l < "$ledger") lines, ${size_mb} MiB" >&2

# Warm the page cache so that the figure is the report, not the disk.
cat "$ledger" > /dev/null

timing="$BENCH_DIR/time.txt"
/usr/bin/time -v "$bin/report" "$ledger" --out "$BENCH_DIR/out" > "$BENCH_DIR/report.txt" 2> "$timing"
grep -E "^read\+compute" "$timing" >&2 || true

wall=$(awk -F': ' '/Elapsed \(wall clock\) time/ {print $2}' "$timing")
# h:mm:ss or m:ss.cc -> seconds
seconds=$(echo "$wall" | awk -F: '{ if (NF == 3) print $1*3600 + $2*60 + $3; else print $1*60 + $2 }')
rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$timing")
user=$(awk -F': ' '/User time \(seconds\)/ {print $2}' "$timing")
sys=$(awk -F': ' '/System time \(seconds\)/ {print $2}' "$timing")
load=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo "?")
rss_mb=$(( rss_kb / 1024 ))

printf 'dora-report over %s entries: wall %ss, peak RSS %s MB (targets < %ss, < %s MB); CPU user %ss sys %ss on %s cores, load %s\n' \
  "$ENTRIES" "$seconds" "$rss_mb" "$TARGET_SECONDS" "$TARGET_MB" "$user" "$sys" "$(nproc)" "$load"
echo "outputs: $BENCH_DIR/out (report.json, report.md, trend.svg)"

ok=$(awk -v s="$seconds" -v t="$TARGET_SECONDS" 'BEGIN { print (s < t) ? 1 : 0 }')
if [ "$ok" != 1 ] || [ "$rss_mb" -ge "$TARGET_MB" ]; then
  echo "MISSED the target" >&2
  if [ "${STRICT:-0}" = 1 ]; then exit 1; fi
else
  echo "within target" >&2
fi
