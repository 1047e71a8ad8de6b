#!/usr/bin/env bash
# Replays a CI run on a laptop, to debug a failed promotion.
#
#   scripts/replay.sh [--config sluice.toml] [--out DIR] PATH...
#       PATH: the folder `gh run download RUN_ID` made (a folder per
#       artifact), any folder of records, or record files. Every verdict in
#       every record is judged again from its recorded samples under the
#       config's current checks (`verify-health --replay`): nothing is
#       measured or changed. Prints each step summary as the run would have
#       shown it, and exits 1 if any replayed verdict is not a pass.
#
#   scripts/replay.sh --router [--config sluice.toml] [--out DIR]
#                     [--candidate-error-ratio R] [--candidate-latency D] PATH...
#       re-runs each recorded deployment on a fresh embedded router: the same
#       environment, release, commit and strategy, and the environment's
#       checks the router can measure (error_rate, latency, compare; others
#       are named as not replayable), against a stable and a candidate demo
#       app under steady load; the candidate answers errors or slowly as
#       asked. gate, shift-traffic, verify-health, promote run as the action
#       runs them, and each record's outcome is printed beside the replayed
#       one (scripts/replay-router.py). Exits 1 if any replay ended
#       otherwise than its record.
#
#   scripts/replay.sh --action [--out DIR] [-- run-action.py args]
#       runs the composite action's steps here, exactly as the runner does
#       (scripts/run-action.py), with GITHUB_OUTPUT and GITHUB_STEP_SUMMARY
#       pointed at files in DIR; e.g. against the embedded router of
#       scripts/demo.sh:
#         scripts/replay.sh --action -- --input environment=dev --input version=v2 \
#           --input config=out/demo/sluice.toml --input candidate-upstream=http://127.0.0.1:PORT
#
# The binaries come from PATH, else from this checkout (built if needed).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
config=sluice.toml
out=
mode=records
paths=()
router_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --config) config=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --action) mode=action; shift ;;
    --router) mode=router; shift ;;
    --candidate-error-ratio | --candidate-latency) router_args+=("$1" "$2"); shift 2 ;;
    --) shift; break ;;
    -h | --help) sed -n '2,34p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) paths+=("$1"); shift ;;
  esac
done
out=${out:-$root/out/replay-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
out=$(cd "$out" && pwd)

need=(verify-health)
packages=(-p sluice-cli)
if [ "$mode" = router ]; then
  need+=(sluice-router sluice-demo-app sluice-loadgen)
  packages+=(-p sluice-router -p sluice-demo)
fi
for b in "${need[@]}"; do
  if ! command -v "$b" >/dev/null 2>&1; then
    (cd "$root" && cargo build --release --locked --quiet "${packages[@]}" --bins)
    PATH="${CARGO_TARGET_DIR:-$root/target}/release:$PATH"
    break
  fi
done

if [ "$mode" = action ]; then
  export GITHUB_STEP_SUMMARY=$out/summary.md
  code=0
  python3 "$root/scripts/run-action.py" --state "$out/state" --summary "$out/summary.md" "$@" \
    >"$out/outputs.txt" || code=$?
  cat "$out/summary.md" 2>/dev/null || true
  echo
  echo "action outputs:"
  cat "$out/outputs.txt"
  echo "records, summaries and artifacts are in $out (exit $code)" >&2
  exit "$code"
fi

[ ${#paths[@]} -gt 0 ] || { echo "replay.sh: name the downloaded run folder or record files (see --help)" >&2; exit 2; }
[ -f "$config" ] || { echo "replay.sh: config $config not found; pass --config PATH (the config the run used)" >&2; exit 2; }
records=()
for p in "${paths[@]}"; do
  if [ -d "$p" ]; then
    while IFS= read -r f; do records+=("$f"); done < <(find "$p" -type f -name '*.json' | LC_ALL=C sort)
  elif [ -f "$p" ]; then
    records+=("$p")
  else
    echo "replay.sh: $p does not exist" >&2
    exit 2
  fi
done
[ ${#records[@]} -gt 0 ] || { echo "replay.sh: no records (*.json) under ${paths[*]}" >&2; exit 2; }

if [ "$mode" = router ]; then
  exec python3 "$root/scripts/replay-router.py" --config "$config" --out "$out" "${router_args[@]}" "${records[@]}"
fi

export GITHUB_STEP_SUMMARY=$out/summary.md
export GITHUB_OUTPUT=$out/outputs.txt
: >"$GITHUB_STEP_SUMMARY"
: >"$GITHUB_OUTPUT"
worst=0
replayed=0
for record in "${records[@]}"; do
  fields=$(python3 -c '
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except Exception:
    sys.exit(1)
if not str(r.get("schema", "")).startswith("sluice.deployment/"):
    sys.exit(1)
verdicts = sum(1 for e in r.get("events", []) if e.get("type") == "verdict")
print(r["environment"], r["version"], r["status"], verdicts)
' "$record") || { echo "skipped $record: not a sluice record" >&2; continue; }
  read -r env version status verdicts <<<"$fields"
  echo "== $record: $version in $env, $status, $verdicts verdict(s)" >&2
  if [ "$verdicts" = 0 ]; then
    echo "   no verdicts to replay" >&2
    continue
  fi
  code=0
  verify-health --config "$config" -e "$env" --record "$record" --replay "$record" >>"$out/replay.log" || code=$?
  replayed=$((replayed + 1))
  [ "$code" -le "$worst" ] || worst=$code
done
echo
cat "$GITHUB_STEP_SUMMARY"
echo "replayed $replayed record(s); summary in $out/summary.md" >&2
exit "$worst"
