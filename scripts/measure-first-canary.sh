#!/usr/bin/env bash
# How long a newcomer waits for the first canary: a fresh clone of this
# repository's HEAD, a fresh target directory, then scripts/demo.sh as the
# README's quick start runs it; prints the seconds from the clone to the bad
# release's automatic rollback, and to the demo's end.
#
#   scripts/measure-first-canary.sh [RUNS]      (default: 1 run)
#
# Not counted: downloading the crates (`cargo fetch --locked` runs first; a
# newcomer's first `cargo build` downloads them too, at the network's pace).
# Counted: the clone, the whole build from nothing (no target directory, no
# sccache or other wrapper), the demo. SLUICE_DEMO_FEATURES=full measures
# the build with the AWS SDK and octocrab. The machine's load (uptime) is printed before and after each run:
# a loaded machine builds slower, so say what it was with the figure.
#
# Leaves nothing behind but the printed figures (the clone, its target
# directory and the demo's output are deleted; KEEP=1 keeps them).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-1}
case "$runs" in
  '' | *[!0-9]*) echo "RUNS must be a number of runs, not '$runs'" >&2; exit 2 ;;
esac
head=$(git -C "$root" rev-parse HEAD)
if [ -n "$(git -C "$root" status --porcelain --untracked-files=no)" ]; then
  echo "note: the working tree has uncommitted changes; this measures HEAD ($head) without them" >&2
fi

echo "fetching crates first (not counted): cargo fetch --locked" >&2
(cd "$root" && cargo fetch --locked --quiet)

# A newcomer has no compiler cache in between.
unset RUSTC_WRAPPER CARGO_BUILD_RUSTC_WRAPPER CARGO_TARGET_DIR CARGO_BUILD_TARGET_DIR

results=()
for run in $(seq 1 "$runs"); do
  work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-first-canary.XXXXXX")
  if [ -z "${KEEP:-}" ]; then
    # shellcheck disable=SC2064 # expand now: each run has its own directory
    trap "rm -rf '$work'" EXIT
  fi
  echo "run $run/$runs in $work; load before: $(uptime | sed 's/.*load average/load average/')" >&2
  start=$(date +%s)
  git clone --quiet "$root" "$work/sluice"
  git -C "$work/sluice" checkout --quiet "$head"
  code=0
  # The CPU time (GNU time, where there is one) says what the build costs
  # whatever else the machine is doing: on an idle 2-core machine the wall
  # time is at least half of it.
  timer=()
  if /usr/bin/time -f '%U %S' -o /dev/null true 2>/dev/null; then
    timer=(/usr/bin/time -f '%U %S' -o "$work/cpu")
  fi
  (cd "$work/sluice" && CARGO_TARGET_DIR="$work/target" "${timer[@]}" scripts/demo.sh "$work/out") \
    2>"$work/demo.err" >"$work/demo.out" || code=$?
  end=$(date +%s)
  load_after=$(uptime | sed 's/.*load average/load average/')
  if [ "$code" -ne 0 ]; then
    tail -n 30 "$work/demo.err" >&2
    echo "run $run: scripts/demo.sh failed with exit code $code (its output is in $work, kept)" >&2
    trap - EXIT
    exit 1
  fi
  # The demo's own line: "time: the bad canary was rolled back Ns after this
  # script started (build Ns); the whole demo took Ns".
  line=$(grep '^time: ' "$work/demo.err" | tail -n 1)
  rolled=$(sed -E 's/.*rolled back ([0-9]+)s after.*/\1/' <<<"$line")
  built=$(sed -E 's/.*\(build ([0-9]+)s\).*/\1/' <<<"$line")
  demo=$(sed -E 's/.*demo took ([0-9]+)s.*/\1/' <<<"$line")
  [[ "$rolled" =~ ^[0-9]+$ && "$built" =~ ^[0-9]+$ && "$demo" =~ ^[0-9]+$ ]] || {
    echo "run $run: cannot read the demo's time line: '$line'" >&2
    exit 1
  }
  # The clone took what the demo did not: from our start to the demo's.
  before_demo=$((end - start - demo))
  first=$((before_demo + rolled))
  total=$((end - start))
  results+=("$first")
  cpu=""
  if [ -s "$work/cpu" ]; then
    cpu=$(awk '{printf "; CPU time %.0fs (user+system, build and demo)", $1 + $2}' "$work/cpu")
  fi
  echo "run $run: first rollback ${first}s after the clone started (clone ${before_demo}s, build ${built}s, demo to the rollback $((rolled - built))s); whole path ${total}s${cpu}; load after: $load_after"
  if [ -z "${KEEP:-}" ]; then
    rm -rf "$work"
    trap - EXIT
  else
    echo "kept: $work" >&2
  fi
done
echo "first canary (seconds from a fresh clone to the first rollback, ${SLUICE_DEMO_FEATURES:-lean} build, $(nproc) cores): ${results[*]}"
