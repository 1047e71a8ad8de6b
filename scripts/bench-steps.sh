#!/usr/bin/env bash
# Start-to-exit time of each step binary on a small record, against a live
# embedded router: what a workflow pays per step beyond the work it asks for.
# Uses hyperfine (Debian package) when present, else a plain loop; release
# binaries. Target: each step under 20 ms. A measurement, not a test: it
# exits 1 on a miss only with STRICT=1.
#
#   scripts/bench-steps.sh          RUNS=50 by default
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
runs=${RUNS:-50}

if ! command -v hyperfine >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "bench-steps: installing hyperfine" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine >/dev/null 2>&1; } \
    || true
fi

echo "bench-steps: building release binaries" >&2
(cd "$root" && cargo build --release --locked -q --bins)
bin=$target/release
# shellcheck source=scripts/testlib.sh
. "$root/scripts/testlib.sh"
tmp=$(mktemp -d)
trap '_stop_all; rm -rf "$tmp"' EXIT

background "$bin/sluice-demo-app" --version v1 --ready-file "$tmp/v1.json" >/dev/null
background "$bin/sluice-demo-app" --version v2 --ready-file "$tmp/v2.json" >/dev/null
wait_ready "$tmp/v1.json"; wait_ready "$tmp/v2.json"
v1="http://$(json_field "$tmp/v1.json" listen)"; v2="http://$(json_field "$tmp/v2.json" listen)"
background "$bin/sluice-router" --stable "$v1" --ready-file "$tmp/router.json" >/dev/null
wait_ready "$tmp/router.json"
admin="http://$(json_field "$tmp/router.json" admin)"

cat > "$tmp/sluice.toml" <<TOML
app = "shop"
[ledger]
kind = "file"
path = "ledger.jsonl"
[defaults]
strategy = { kind = "all_at_once" }
[[defaults.check]]
name = "errors"
kind = "error_rate"
max = 0.01
[[environment]]
name = "dev"
router = { kind = "local", admin_url = "$admin" }
[[environment]]
name = "prd"
router = { kind = "local", admin_url = "$admin" }
TOML
cd "$tmp"
unset GITHUB_ACTIONS GITHUB_OUTPUT GITHUB_STEP_SUMMARY
export CI=true

# A ledger with a few entries for dora-report (each rollback ends its
# deployment and frees the environment's lease).
for i in 1 2 3; do
  "$bin/gate" -e dev --record "l$i.json" --release "v2.$i" --commit abcdef1 >/dev/null 2>&1
  "$bin/rollback" -e dev --record "l$i.json" --reason bench >/dev/null 2>&1
done
# A small record to work on: gate creates it, the candidate in place at 0%.
"$bin/gate" -e dev --record small.json --release v2 --commit abcdef1 >/dev/null 2>&1
"$bin/shift-traffic" -e dev --record small.json --candidate-upstream "$v2" --weight 0 >/dev/null 2>&1
cp small.json base.json

# name | command. Steps that change things start each run from the same
# state: the record copied back, the environment lease (leases/) freed.
steps=(
  "gate|rm -rf g.json leases; $bin/gate -e dev --record g.json --release v3 --commit abcdef1"
  "shift-traffic|rm -rf leases; cp base.json s.json; $bin/shift-traffic -e dev --record s.json --weight 0"
  "verify-health --replay|$bin/verify-health -e dev --record small.json --replay $root/fuzz/seeds/record/promoted.json"
  "promote (refused: not verified)|$bin/promote -e dev --record small.json"
  "rollback|rm -rf leases; cp base.json r.json; $bin/rollback -e dev --record r.json --reason bench"
  "dora-report|$bin/dora-report --since all"
)

printf '\nstep start-to-exit, release build, %s runs each, %s cores, load %s\n' "$runs" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-32s %10s %10s %10s  %s\n' step "median ms" "p90 ms" "max ms" "target < 20 ms"
missed=0
for entry in "${steps[@]}"; do
  name=${entry%%|*}
  cmd=${entry#*|}
  # One warm-up, then timed runs; the reset (cp/rm) is timed too and is
  # well under a millisecond.
  bash -c "$cmd" >/dev/null 2>&1 || true
  if command -v hyperfine >/dev/null; then
    hyperfine -N --runs "$runs" --warmup 2 -i --export-json "$tmp/h.json" "bash -c '$cmd'" >/dev/null 2>&1
    read -r median p90 max < <(python3 -c '
import json,sys
t=sorted(x*1000 for x in json.load(open(sys.argv[1]))["results"][0]["times"])
print(f"{t[len(t)//2]:.2f} {t[int(len(t)*0.9)]:.2f} {t[-1]:.2f}")' "$tmp/h.json")
  else
    read -r median p90 max < <(python3 - "$cmd" "$runs" <<'PY'
import subprocess,sys,time
cmd,runs=sys.argv[1],int(sys.argv[2])
t=[]
for _ in range(runs):
    s=time.perf_counter(); subprocess.run(["bash","-c",cmd],stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL); t.append((time.perf_counter()-s)*1000)
t.sort(); print(f"{t[len(t)//2]:.2f} {t[int(len(t)*0.9)]:.2f} {t[-1]:.2f}")
PY
)
  fi
  verdict=$(awk -v m="$median" 'BEGIN { print (m < 20 ? "met" : "MISSED") }')
  [ "$verdict" = met ] || missed=1
  printf '%-32s %10s %10s %10s  %s\n' "$name" "$median" "$p90" "$max" "$verdict"
done
echo "(times include starting bash for the command, about 1 ms)"
if [ -n "${STRICT:-}" ] && [ "$missed" = 1 ]; then exit 1; fi
