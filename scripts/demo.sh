#!/usr/bin/env bash
# The main job, on one machine with no cloud: release v2 is promoted
# dev -> tst -> prd with a canary in each environment on the embedded router
# (prd is two targets, prd-east and prd-west, two routers standing in for two
# regions, promoted in two waves); release v3 is bad (injected errors) and is
# rolled back automatically in dev; release v4 is good in dev and tst but
# fails behind prd-east only, so it is stopped in prd's first wave and
# prd-west never sees it; then dora-report prints the DORA report.
#
#   scripts/demo.sh [OUTPUT_DIR]
#   SLUICE_DEMO_PROFILE=release scripts/demo.sh    optimised binaries
#   SLUICE_DEMO_PROFILE=dev scripts/demo.sh        the tests' build (target/debug)
#   SLUICE_DEMO_FEATURES=full scripts/demo.sh      with the AWS and GitHub providers
#
# It builds only the three packages it runs (the steps, the router, the demo
# app and load generator), without the AWS SDK and octocrab, which it does
# not use, in Cargo's `demo` profile (unoptimised, no debug info, in
# target/demo): on a fresh 2-core machine a few minutes, not the quarter of
# an hour of a release build with link-time optimisation. The demo itself
# takes about a minute either way.
#
# Everything it writes (records, ledger, config, logs, report) lands in
# OUTPUT_DIR (default: out/demo-<time>). Exits non-zero if any step did not
# behave as described. Stops every process it started.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/out/demo-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out/run" "$out/records" "$out/logs"
out=$(cd "$out" && pwd)

say() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }
fail() { printf '\nDEMO FAILED: %s\n(see %s)\n' "$*" "$out" >&2; exit 1; }

profile=${SLUICE_DEMO_PROFILE:-demo}
case "$profile" in
  demo) dir=demo ;;
  dev) dir=debug ;;
  release) dir=release ;;
  *) echo "SLUICE_DEMO_PROFILE must be demo, dev or release, not '$profile'" >&2; exit 2 ;;
esac
# The demo needs neither the AWS SDK nor octocrab (most of a full build):
# by default the steps are built without them (docs/testing.md, "Features").
features=${SLUICE_DEMO_FEATURES:-lean}
case "$features" in
  lean) feature_flags=(--no-default-features) ;;
  full) feature_flags=() ;;
  *) echo "SLUICE_DEMO_FEATURES must be lean or full, not '$features'" >&2; exit 2 ;;
esac
say "building the steps, the router and the demo app ($profile profile, $features)"
(cd "$root" && cargo build --profile "$profile" --locked --quiet "${feature_flags[@]}" -p sluice-cli -p sluice-router -p sluice-demo --bins)
built=$SECONDS
bin=${CARGO_TARGET_DIR:-$root/target}/$dir
export PATH="$bin:$PATH"

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

# Starts a server in the background and waits for its ready file.
start() {
  local name=$1; shift
  "$@" --ready-file "$out/run/$name.json" >"$out/logs/$name.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do
    [ -s "$out/run/$name.json" ] && return 0
    sleep 0.1
  done
  fail "$name did not start"
}
# field FILE KEY: one string field of a ready file (compact JSON our
# binaries write, e.g. {"listen":"127.0.0.1:8080","pid":42}); read with sed,
# as a Python start costs a noticeable part of a second here.
field() {
  local v; v=$(sed -n "s/.*\"$2\":\"\([^\"]*\)\".*/\1/p" "$1")
  [ -n "$v" ] || fail "$1 has no \"$2\""
  printf '%s\n' "$v"
}
json_get() { python3 -c 'import json,sys; d=json.load(sys.stdin); [d:=d[k] for k in sys.argv[1:]]; print(d)' "$@"; }
admin_state() { curl -fsS "http://$(field "$out/run/router-$1.json" admin)/v1/state"; }

say "starting the demo app (v1 stable, v2 good, v3 bad, v4 bad in prd-east only) and the routers"
start app-v1 sluice-demo-app --listen 127.0.0.1:0 --version v1
start app-v2 sluice-demo-app --listen 127.0.0.1:0 --version v2
start app-v3 sluice-demo-app --listen 127.0.0.1:0 --version v3 --error-ratio 0.2 --seed 7
v1="http://$(field "$out/run/app-v1.json" listen)"
v2="http://$(field "$out/run/app-v2.json" listen)"
v3="http://$(field "$out/run/app-v3.json" listen)"
envs=(dev tst prd)
# A router per environment, and prd's two: one per region.
routers=(dev tst prd-east prd-west)
for router in "${routers[@]}"; do
  start "router-$router" sluice-router --listen 127.0.0.1:0 --admin 127.0.0.1:0 --stable "$v1"
done

cat >"$out/sluice.toml" <<TOML
app = "shop"

[ledger]
kind = "file"
path = "ledger.jsonl"

[analysis]
interval = "1s"
alpha = 0.01

[defaults]
strategy = { kind = "canary", stages = [10, 50, 100], stage_duration = "4s" }

[[defaults.check]]
name = "error-rate"
kind = "error_rate"
max = 0.02
min_samples = 20
critical = true

[[defaults.check]]
name = "latency-p99"
kind = "latency"
percentile = 99
max = "250ms"
min_samples = 20

[[defaults.check]]
name = "errors-vs-stable"
kind = "compare"
metric = "error_rate"
tolerance = 0.02
min_samples = 20
TOML
for env in dev tst; do
  cat >>"$out/sluice.toml" <<TOML

[[environment]]
name = "$env"
router = { kind = "local", admin_url = "http://$(field "$out/run/router-$env.json" admin)" }
TOML
done
# prd: two regions promoted in two waves, each with a shorter plan (a first
# region's 10% is the canary of the whole environment).
cat >>"$out/sluice.toml" <<TOML

[[environment]]
name = "prd"
waves = [["prd-east"], ["prd-west"]]
strategy = { kind = "canary", stages = [10, 100], stage_duration = "3s" }

[[environment.target]]
name = "prd-east"
router = { kind = "local", admin_url = "http://$(field "$out/run/router-prd-east.json" admin)" }

[[environment.target]]
name = "prd-west"
router = { kind = "local", admin_url = "http://$(field "$out/run/router-prd-west.json" admin)" }
TOML
config="$out/sluice.toml"
echo "watch it from another terminal: $bin/sluice status --config $config --watch" >&2

say "driving steady load through every router"
for router in "${routers[@]}"; do
  sluice-loadgen --url "http://$(field "$out/run/router-$router.json" listen)/" --rps 150 --duration 10m \
    --out "$out/logs/load-$router.json" >/dev/null 2>"$out/logs/load-$router.log" &
  pids+=($!)
done
sleep 1

export GITHUB_STEP_SUMMARY="$out/summary.md"
export GITHUB_OUTPUT="$out/outputs.txt"
: >"$GITHUB_STEP_SUMMARY"; : >"$GITHUB_OUTPUT"

# step NAME EXPECTED_EXIT ARGS...: runs a step and checks its exit code.
step() {
  local name=$1 expected=$2; shift 2
  local code=0
  "$name" "$@" >>"$out/logs/steps.out" || code=$?
  [ "$code" -eq "$expected" ] || fail "$name $* exited $code, expected $expected"
}

# The release history lives in a small git repository (the output folder),
# as it would in CI's checkout: promote records the commits each deployment
# ships, and dora-report turns their times into the change lead time.
commit_at() { # commit_at HOURS_AGO MESSAGE: an empty commit, prints its SHA
  local when; when="@$(( $(date +%s) - $1 * 3600 )) +0000"
  GIT_AUTHOR_DATE="$when" GIT_COMMITTER_DATE="$when" git -C "$out" commit -q --allow-empty -m "$2"
  git -C "$out" rev-parse HEAD
}
export GIT_AUTHOR_NAME=demo GIT_AUTHOR_EMAIL=demo@example.com GIT_COMMITTER_NAME=demo GIT_COMMITTER_EMAIL=demo@example.com
[ -d "$out/.git" ] || git -C "$out" init -q -b main
commit_at 30 "v1: first release" >/dev/null
commit_at 6 "v2: add search" >/dev/null
commit2=$(commit_at 3 "v2: faster checkout")
commit3=$(commit_at 1 "v3: new payment flow")
commit4=$(commit_at 0 "v4: payment provider per region")
# candidates ENV URL [EAST_URL]: the --candidate-upstream of an environment
# (prd names each target's).
candidates() {
  case $1 in
    prd) echo "prd-east=${3:-$2},prd-west=$2" ;;
    *) echo "$2" ;;
  esac
}
for env in "${envs[@]}"; do
  case $env in
    prd) say "release v2 -> prd: gate, then wave 1 (prd-east) and wave 2 (prd-west), each a canary 10/100 with analysis; promote" ;;
    *) say "release v2 -> $env: gate, canary 10/50/100 with analysis, promote" ;;
  esac
  rec="$out/records/v2-$env.json"
  step gate 0 --config "$config" -e "$env" --record "$rec" --release v2 --commit "$commit2"
  step shift-traffic 0 --config "$config" -e "$env" --record "$rec" --candidate-upstream "$(candidates "$env" "$v2")"
  step promote 0 --config "$config" -e "$env" --record "$rec"
done
for router in "${routers[@]}"; do
  stable=$(admin_state "$router" | json_get stable upstream)
  [ "$stable" = "$v2" ] || fail "$router: stable is $stable after promotion, expected $v2"
done

say "release v3 (20% errors) -> dev: the canary must roll back by itself"
rec="$out/records/v3-dev.json"
step gate 0 --config "$config" -e dev --record "$rec" --release v3 --commit "$commit3"
step shift-traffic 1 --config "$config" -e dev --record "$rec" --candidate-upstream "$v3"
weight=$(admin_state dev | json_get candidate_weight)
[ "$weight" = 0 ] || fail "dev: candidate weight is $weight after the rollback, expected 0"
step rollback 0 --config "$config" -e dev --record "$rec" --reason "operator confirms"
first_rollback=$SECONDS

say "release v3 -> tst is refused: it never passed dev"
step gate 1 --config "$config" -e tst --record "$out/records/v3-tst.json" --release v3 --commit "$commit3"

say "release v4 (fails behind prd-east only) -> dev, tst: promoted; -> prd: stopped in wave 1, prd-west never sees it"
start app-v4 sluice-demo-app --listen 127.0.0.1:0 --version v4
# v4 as deployed in prd-east, where it fails (say, on that region's payment
# provider): the same release with errors injected, behind prd-east only.
start app-v4-east sluice-demo-app --listen 127.0.0.1:0 --version v4 --error-ratio 0.2 --seed 9
v4="http://$(field "$out/run/app-v4.json" listen)"
v4_east="http://$(field "$out/run/app-v4-east.json" listen)"
for env in dev tst; do
  rec="$out/records/v4-$env.json"
  step gate 0 --config "$config" -e "$env" --record "$rec" --release v4 --commit "$commit4"
  step shift-traffic 0 --config "$config" -e "$env" --record "$rec" --candidate-upstream "$v4"
  step promote 0 --config "$config" -e "$env" --record "$rec"
done
rec="$out/records/v4-prd.json"
step gate 0 --config "$config" -e prd --record "$rec" --release v4 --commit "$commit4"
step shift-traffic 1 --config "$config" -e prd --record "$rec" --candidate-upstream "$(candidates prd "$v4" "$v4_east")"
for router in prd-east prd-west; do
  state=$(admin_state "$router")
  weight=$(json_get candidate_weight <<<"$state")
  stable=$(json_get stable upstream <<<"$state")
  [ "$weight" = 0 ] || fail "$router: candidate weight is $weight after v4 was stopped, expected 0"
  [ "$stable" = "$v2" ] || fail "$router: stable is $stable after v4 was stopped, expected $v2"
done
# prd-west's router never had v4 as its candidate, let alone traffic to it.
west_candidate=$(admin_state prd-west | python3 -c 'import json,sys; c=json.load(sys.stdin)["candidate"]; print(c and c["upstream"])')
[ "$west_candidate" != "$v4" ] || fail "prd-west: v4 became its candidate ($west_candidate), but its wave never started"
python3 - "$rec" <<'PY' || fail "the v4 record does not say that prd-east stopped it in wave 1 (see $rec)"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["status"] == "rolled_back", r["status"]
moved = {e.get("target") for e in r["events"] if e["type"] == "traffic"}
assert moved == {"prd-east"}, moved
rollback = [e for e in r["events"] if e["type"] == "rollback"]
assert rollback and all("target prd-east in wave 1" in e["reason"] for e in rollback), rollback
PY

say "DORA report"
dora-report --config "$config" --all-environments --since all --json "$out/dora.json" --markdown "$out/dora.md" --svg "$out/dora.svg" \
  | tee "$out/dora.txt"
grep -q "rolled back in prd-east" "$out/dora.txt" || fail "the DORA history does not name prd-east as the target that stopped v4"

for env in "${envs[@]}"; do kill "${pids[@]}" 2>/dev/null || true; done
wait 2>/dev/null || true
pids=()
say "demo passed: v2 is stable in dev, tst and prd; v3 was rolled back in dev; v4 was stopped in prd's first wave (prd-east), prd-west never saw it"
echo "records, ledger, summaries and the report are in $out" >&2
echo "time: the bad canary was rolled back ${first_rollback}s after this script started (build ${built}s); the whole demo took ${SECONDS}s" >&2
