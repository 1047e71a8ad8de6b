#!/usr/bin/env bash
# The main job, on one machine with no cloud: release v2 is promoted
# dev -> tst -> prd with a canary in each environment on the embedded router;
# release v3 is bad (injected errors) and is rolled back automatically in dev;
# then dora-report prints the DORA report.
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
# field FILE KEY: one string field of a ready file.
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
json_get() { python3 -c 'import json,sys; d=json.load(sys.stdin); [d:=d[k] for k in sys.argv[1:]]; print(d)' "$@"; }
admin_state() { curl -fsS "http://$(field "$out/run/router-$1.json" admin)/v1/state"; }

say "starting the demo app (v1 stable, v2 good, v3 bad) and one router per environment"
start app-v1 sluice-demo-app --listen 127.0.0.1:0 --version v1
start app-v2 sluice-demo-app --listen 127.0.0.1:0 --version v2
start app-v3 sluice-demo-app --listen 127.0.0.1:0 --version v3 --error-ratio 0.2 --seed 7
v1="http://$(field "$out/run/app-v1.json" listen)"
v2="http://$(field "$out/run/app-v2.json" listen)"
v3="http://$(field "$out/run/app-v3.json" listen)"
envs=(dev tst prd)
for env in "${envs[@]}"; do
  start "router-$env" sluice-router --listen 127.0.0.1:0 --admin 127.0.0.1:0 --stable "$v1"
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
for env in "${envs[@]}"; do
  cat >>"$out/sluice.toml" <<TOML

[[environment]]
name = "$env"
router = { kind = "local", admin_url = "http://$(field "$out/run/router-$env.json" admin)" }
TOML
done
config="$out/sluice.toml"
echo "watch it from another terminal: $bin/sluice status --config $config --watch" >&2

say "driving steady load through every router"
for env in "${envs[@]}"; do
  sluice-loadgen --url "http://$(field "$out/run/router-$env.json" listen)/" --rps 150 --duration 10m \
    --out "$out/logs/load-$env.json" >/dev/null 2>"$out/logs/load-$env.log" &
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
for env in "${envs[@]}"; do
  say "release v2 -> $env: gate, canary 10/50/100 with analysis, promote"
  rec="$out/records/v2-$env.json"
  step gate 0 --config "$config" -e "$env" --record "$rec" --release v2 --commit "$commit2"
  step shift-traffic 0 --config "$config" -e "$env" --record "$rec" --candidate-upstream "$v2"
  step promote 0 --config "$config" -e "$env" --record "$rec"
  stable=$(admin_state "$env" | json_get stable upstream)
  [ "$stable" = "$v2" ] || fail "$env: stable is $stable after promotion, expected $v2"
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

say "DORA report"
dora-report --config "$config" --all-environments --since all --json "$out/dora.json" --markdown "$out/dora.md" --svg "$out/dora.svg" \
  | tee "$out/dora.txt"

for env in "${envs[@]}"; do kill "${pids[@]}" 2>/dev/null || true; done
wait 2>/dev/null || true
pids=()
say "demo passed: v2 is stable in dev, tst and prd; v3 was rolled back in dev"
echo "records, ledger, summaries and the report are in $out" >&2
echo "time: the bad canary was rolled back ${first_rollback}s after this script started (build ${built}s); the whole demo took ${SECONDS}s" >&2
