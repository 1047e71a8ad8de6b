#!/usr/bin/env bash
# Runs the composite action (action.yml, through scripts/run-action.py, which
# executes its steps as the runner does) against the embedded router and the
# demo app on 127.0.0.1, and checks its outputs and what it did:
#   a good release is promoted; a release that fails verify-health is rolled
#   back and the action fails; a canary paused for approval continues in a
#   second job from the record artifact; a blocked gate moves nothing; setup
#   mode only installs.
#
#   scripts/test-action.sh      (ends with "N passed, N failed")
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/testlib.sh
. "$root/scripts/testlib.sh"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
(cd "$root" && cargo build --locked --quiet --workspace --bins && cargo build --release --locked --quiet -p sluice-cli --bin sluice) ||
  { echo "build failed" >&2; exit 1; }
dev_bin=$CARGO_TARGET_DIR/debug
unset GITHUB_OUTPUT GITHUB_STEP_SUMMARY GITHUB_PATH GITHUB_ENV RUNNER_TEMP RUNNER_TOOL_CACHE

work=$(mktemp -d)
trap '_stop_all; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
mkdir -p "$work/run" "$work/ws"

# The demo app in two versions and one router per environment.
start() {
  local name=$1; shift
  background "$@" --ready-file "$work/run/$name.json" >"$work/run/$name.log" 2>&1
  wait_ready "$work/run/$name.json"
}
start app-v1 "$dev_bin/sluice-demo-app" --listen 127.0.0.1:0 --version v1
start app-v2 "$dev_bin/sluice-demo-app" --listen 127.0.0.1:0 --version v2
start app-v3 "$dev_bin/sluice-demo-app" --listen 127.0.0.1:0 --version v3 --error-ratio 0.3 --seed 3
v1="http://$(json_field "$work/run/app-v1.json" listen)"
v2="http://$(json_field "$work/run/app-v2.json" listen)"
v3="http://$(json_field "$work/run/app-v3.json" listen)"
for env in dev prd; do
  start "router-$env" "$dev_bin/sluice-router" --listen 127.0.0.1:0 --admin 127.0.0.1:0 --stable "$v1"
  background "$dev_bin/sluice-loadgen" --url "http://$(json_field "$work/run/router-$env.json" listen)/" \
    --rps 150 --duration 5m >/dev/null 2>&1
done
admin() { echo "http://$(json_field "$work/run/router-$1.json" admin)"; }
router_state() { curl -fsS "$(admin "$1")/v1/state" >"$work/state.json" && json_field "$work/state.json" "${@:2}"; }

cat >"$work/ws/sluice.toml" <<TOML
app = "shop"

[ledger]
kind = "file"
path = "ledger.jsonl"

[analysis]
interval = "500ms"

[defaults]
strategy = { kind = "canary", stages = [50, 100], stage_duration = "2s" }
pause_timeout = "1h"

[[defaults.check]]
name = "error-rate"
kind = "error_rate"
max = 0.02
min_samples = 20
critical = true

[[environment]]
name = "dev"
router = { kind = "local", admin_url = "$(admin dev)" }

[[environment]]
name = "prd"
router = { kind = "local", admin_url = "$(admin prd)" }
TOML

# action LABEL INPUT=VALUE...: one job running the action; state (cache,
# artifacts) is shared by all jobs of the test, as within one workflow run.
action() {
  local label=$1; shift
  local inputs=()
  for i in "$@"; do inputs+=(--input "$i"); done
  RUNNER_TEMP=$work/$label/temp GITHUB_SHA=abcdef1234567890abcdef1234567890abcdef12 \
    python3 "$root/scripts/run-action.py" --state "$work/state" --workspace "$work/ws" \
    --summary "$work/$label.summary.md" "${inputs[@]}" >"$work/$label.out" 2>"$work/$label.err"
  echo $? >"$work/$label.code"
}
code() { cat "$work/$1.code"; }
out() { grep -E "^$2=" "$work/$1.out" | head -1 | cut -d= -f2-; }

echo "# setup mode installs and puts the binaries on PATH"
action setup mode=setup
check "exit 0" [ "$(code setup)" = 0 ]
bin=$(out setup bin-dir)
check "bin-dir output" [ -x "$bin/sluice" ]
for step in gate shift-traffic verify-health promote rollback dora-report; do
  check "$step installed" [ -x "$bin/$step" ]
done
check "no record artifact in setup mode" [ ! -e "$work/state/artifacts" ]

echo "# a good release is promoted"
action good environment=dev version=v2 candidate-upstream="$v2" verify-duration=2s
check "exit 0" [ "$(code good)" = 0 ]
check "decision=promoted" [ "$(out good decision)" = promoted ]
check "next-environment=prd" [ "$(out good next-environment)" = prd ]
check "record output is the record" [ "$(json_field "$(out good record)" status)" = promoted ]
check "v2 is stable in dev" [ "$(router_state dev stable upstream)" = "$v2" ]
check "the record was uploaded as sluice-record-dev" [ -f "$work/state/artifacts/sluice-record-dev/dev.json" ]
check "the summary has gate, shift-traffic, verify-health and promote" \
  bash -c "grep -q 'sluice gate: allow' '$work/good.summary.md' && grep -q 'sluice shift-traffic' '$work/good.summary.md' \
    && grep -q 'sluice verify-health: pass' '$work/good.summary.md' && grep -q 'sluice promote' '$work/good.summary.md'"
check "the cache was installed from once and restored" [ -n "$(ls "$work/state/cache" 2>/dev/null)" ]
check "the commit defaults to the run's SHA" [ "$(json_field "$(out good record)" commit)" = abcdef1234567890abcdef1234567890abcdef12 ]

echo "# a release that fails verify-health is rolled back and fails the job"
action bad environment=dev version=v3 strategy=all-at-once candidate-upstream="$v3" verify-duration=5s \
  record-artifact=sluice-record-dev-v3
check "exit non-zero" [ "$(code bad)" != 0 ]
check "decision=rolled-back" [ "$(out bad decision)" = rolled-back ]
check "verify-health failed" contains "$work/bad.err" "verify-health exited 1"
check "rollback ran" contains "$work/bad.summary.md" "sluice rollback: 100% stable"
check "the candidate has 0%" [ "$(router_state dev candidate_weight)" = 0 ]
check "v2 is still stable" [ "$(router_state dev stable upstream)" = "$v2" ]
check "the record says rolled_back" [ "$(json_field "$(out bad record)" status)" = rolled_back ]
check "no next environment" [ -z "$(out bad next-environment)" ]

echo "# a canary paused for approval continues in a later job"
action paused environment=prd version=v2 candidate-upstream="$v2" pause-at=50 verify-duration=2s
check "exit 0" [ "$(code paused)" = 0 ]
check "decision=paused" [ "$(out paused decision)" = paused ]
check "weight=50" [ "$(out paused weight)" = 50 ]
check "the router holds 50%" [ "$(router_state prd candidate_weight)" = 50 ]
check "verify-health and promote were skipped" contains "$work/paused.err" "promote skipped: the canary is paused"
check "the paused record was uploaded" [ "$(json_field "$work/state/artifacts/sluice-record-prd/prd.json" status)" = paused ]
action approved environment=prd version=v2 verify-duration=2s
check "exit 0" [ "$(code approved)" = 0 ]
check "gate was not run again" contains "$work/approved.err" "resuming the paused canary"
check "decision=promoted" [ "$(out approved decision)" = promoted ]
check "next-environment is empty after the last environment" [ -z "$(out approved next-environment)" ]
check "v2 is stable in prd" [ "$(router_state prd stable upstream)" = "$v2" ]

echo "# a blocked gate moves nothing and rolls nothing back"
action blocked environment=prd version=v9 candidate-upstream="$v3" record-artifact=sluice-record-prd-v9
check "exit non-zero" [ "$(code blocked)" != 0 ]
check "decision=blocked" [ "$(out blocked decision)" = blocked ]
check "rollback left it alone" contains "$work/blocked.err" "nothing to roll back: the deployment is blocked"
check "prd is untouched" [ "$(router_state prd stable upstream)" = "$v2" ] && [ "$(router_state prd candidate_weight)" = 0 ]

echo "# a missing input is refused before anything runs"
action noversion environment=dev
check "exit non-zero" [ "$(code noversion)" != 0 ]
check "names the input" contains "$work/noversion.err" "the input 'version' is required"

echo "# replay.sh re-judges the records of the run, as gh run download lays them out"
cp -r "$work/state/artifacts" "$work/downloaded"
PATH="$dev_bin:$PATH" "$root/scripts/replay.sh" --config "$work/ws/sluice.toml" --out "$work/replay" "$work/downloaded" \
  >"$work/replay.out" 2>"$work/replay.err"
check "exit 1: the bad release fails again" [ $? = 1 ]
check "the bad release: recorded Fail, replayed Fail" contains "$work/replay.out" "recorded Fail, replayed Fail"
check "the good release: recorded Pass, replayed Pass" contains "$work/replay.out" "recorded Pass, replayed Pass"
check "the records are left as they were" diff -r "$work/state/artifacts" "$work/downloaded"
check "the blocked record has nothing to replay" contains "$work/replay.err" "no verdicts to replay"

echo "# replay.sh --router re-runs recorded deployments on a fresh embedded router"
bad_record=$(grep -l '"version": "v3"' "$work"/downloaded/*/*.json | head -1)
good_record=$(out good record)
PATH="$dev_bin:$PATH" "$root/scripts/replay.sh" --router --config "$work/ws/sluice.toml" --out "$work/replay-good" \
  "$good_record" >"$work/replay-good.out" 2>"$work/replay-good.err"
check "exit 0: the good release is promoted again" [ $? = 0 ]
check "recorded promoted, replayed promoted" contains "$work/replay-good.out" "| promoted | promoted |"
check "the replay printed the step summaries" contains "$work/replay-good.out" "sluice promote"
PATH="$dev_bin:$PATH" "$root/scripts/replay.sh" --router --candidate-error-ratio 0.3 --config "$work/ws/sluice.toml" \
  --out "$work/replay-bad" "$bad_record" >"$work/replay-bad.out" 2>"$work/replay-bad.err"
check "exit 0: the bad release, answering 30% errors, is rolled back again" [ $? = 0 ]
check "recorded rolled_back, replayed rolled_back" contains "$work/replay-bad.out" "| rolled_back | rolled_back |"
PATH="$dev_bin:$PATH" "$root/scripts/replay.sh" --router --config "$work/ws/sluice.toml" --out "$work/replay-healthy" \
  "$bad_record" >"$work/replay-healthy.out" 2>"$work/replay-healthy.err"
check "exit 1: the bad release with a healthy candidate ends otherwise than recorded" [ $? = 1 ]
check "the difference is named" contains "$work/replay-healthy.out" "(differs)"

finish
