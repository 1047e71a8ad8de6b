#!/usr/bin/env bash
# Runs the composite action (action.yml) on act, the workflow engine the
# workflow scenarios use (through `scripts/replay.sh --action`: host mode,
# offline, the action installed from a release archive of this checkout),
# against the embedded router and the demo app on 127.0.0.1, and checks its
# outputs and what it did:
#   setup mode only installs; a good release is promoted; a release that
#   fails verify-health is rolled back and the action fails; a canary paused
#   for approval is continued by a second run in mode resume from its record
#   artifact; a blocked gate moves nothing; a missing input and a dispatch of
#   a release with no tag and no commit are refused before anything runs;
#   then replay.sh re-judges and re-runs the records those runs uploaded.
#
#   scripts/test-action.sh      (ends with "N passed, N failed")
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/testlib.sh
. "$root/scripts/testlib.sh"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
(cd "$root" && cargo build --locked --quiet --workspace --bins) || { echo "build failed" >&2; exit 1; }
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

cat >"$work/sluice.toml" <<TOML
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

# The user's repository: a workflow that runs the action once with the
# dispatch's inputs and writes the action's outputs and outcome where this
# script reads them; the release v2 tagged. The config lives outside the
# checkout (input config), so its file ledger is shared by the runs.
repo=$work/repo
mkdir -p "$repo/.github/workflows"
cat >"$repo/.github/workflows/action.yml" <<'YAML'
name: action
on:
  workflow_dispatch:
    inputs:
      mode: { type: string, default: promote }
      environment: { type: string, default: "" }
      version: { type: string, default: "" }
      strategy: { type: string, default: "" }
      pause-at: { type: string, default: "" }
      candidate-upstream: { type: string, default: "" }
      verify-duration: { type: string, default: "" }
      record-artifact: { type: string, default: "" }
      config: { type: string, default: sluice.toml }
permissions: {}
jobs:
  run:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8 # v5.0.0
        with:
          persist-credentials: false
          fetch-depth: 0
      - id: sluice
        uses: sluice-dev/sluice@v0.1.0
        with:
          mode: ${{ inputs.mode }}
          environment: ${{ inputs.environment }}
          version: ${{ inputs.version }}
          strategy: ${{ inputs.strategy }}
          pause-at: ${{ inputs.pause-at }}
          candidate-upstream: ${{ inputs.candidate-upstream }}
          verify-duration: ${{ inputs.verify-duration }}
          record-artifact: ${{ inputs.record-artifact }}
          config: ${{ inputs.config }}
      - name: Report
        if: always()
        env:
          OUTPUTS: ${{ toJSON(steps.sluice.outputs) }}
          OUTCOME: ${{ steps.sluice.outcome }}
        run: |
          printf '%s' "$OUTPUTS" >"$RESULT_DIR/outputs.json"
          printf '%s' "$OUTCOME" >"$RESULT_DIR/outcome"
          command -v python3 >"$RESULT_DIR/python3" || true
YAML
git -C "$repo" init -q -b main
git -C "$repo" remote add origin https://github.com/acme/shop.git
git -C "$repo" add -A
git -C "$repo" -c user.name=dev -c user.email=dev@example.com commit -q -m "release v2"
git -C "$repo" tag v2
git -C "$repo" tag v3
git -C "$repo" tag v9
release_sha=$(git -C "$repo" rev-parse HEAD)


# The action must not need Python (a job container may have none): every
# run below finds a python3 and a python that are not installed.
mkdir -p "$work/nopython"
for p in python3 python; do
  printf '#!/bin/sh\necho "%s: not installed (the action must not need it)" >&2\nexit 127\n' "$p" >"$work/nopython/$p"
  chmod +x "$work/nopython/$p"
done

# action LABEL RUN_ID INPUT=VALUE...: one workflow run of the action on act
# (the paused run and its resume share a run id: one run, two jobs, as the
# record artifact travels between jobs of a run).
export ACT_STANDIN_STORE=$work/store
action() {
  local label=$1 run_id=$2; shift 2
  local inputs=()
  for i in "$@"; do inputs+=(--input "$i"); done
  mkdir -p "$work/$label/result"
  "$root/scripts/replay.sh" --action --repo "$repo" --bin "$dev_bin/sluice" --out "$work/$label" -- workflow_dispatch \
    --env "RESULT_DIR=$work/$label/result" --env "GITHUB_RUN_ID=$run_id" --env "PATH=$work/nopython:$PATH" \
    --input config="$work/sluice.toml" "${inputs[@]}" >"$work/$label.out" 2>"$work/$label.err"
  echo $? >"$work/$label.code"
}
code() { cat "$work/$1.code"; }
out() { json_field "$work/$1/result/outputs.json" "$2" 2>/dev/null; }
outcome() { cat "$work/$1/result/outcome" 2>/dev/null; }
log() { cat "$work/$1/act.log"; }
artifact() { echo "$work/store/runs/$1/artifacts/$2"; }

echo "# setup mode installs and puts the binaries on PATH"
action setup 100 mode=setup
check "exit 0" [ "$(code setup)" = 0 ]
bin=$(out setup bin-dir)
check "bin-dir output" [ -x "$bin/sluice" ]
for step in gate shift-traffic verify-health promote rollback dora-report; do
  check "$step installed" [ -x "$bin/$step" ]
done
check "installed from the release archive, checksum verified" contains "$work/setup/act.log" "checksum verified"
check "no record artifact in setup mode" [ ! -e "$work/store/runs/100" ]

echo "# a good release is promoted"
action good 101 environment=dev version=v2 candidate-upstream="$v2" verify-duration=2s
check "exit 0" [ "$(code good)" = 0 ]
check "decision=promoted" [ "$(out good decision)" = promoted ]
check "next-environment=prd" [ "$(out good next-environment)" = prd ]
check "v2 is stable in dev" [ "$(router_state dev stable upstream)" = "$v2" ]
check "the record was uploaded as sluice-record-shop-dev-1" \
  [ "$(json_field "$(artifact 101 sluice-record-shop-dev-1)/dev.json" status)" = promoted ]
check "the record has the commit of the tag v2" \
  [ "$(json_field "$(artifact 101 sluice-record-shop-dev-1)/dev.json" commit)" = "$release_sha" ]
check "the summary has gate, shift-traffic, verify-health and promote" \
  bash -c "grep -q 'sluice gate: allow' '$work/good/act.log' && grep -q 'sluice shift-traffic' '$work/good/act.log' \
    && grep -q 'sluice verify-health: pass' '$work/good/act.log' && grep -q 'sluice promote' '$work/good/act.log'"
check "the install was saved to the cache" [ -n "$(ls "$work/store/cache" 2>/dev/null)" ]

echo "# a release that fails verify-health is rolled back and fails the job"
action bad 102 environment=dev version=v3 strategy=all-at-once candidate-upstream="$v3" verify-duration=5s
check "exit non-zero" [ "$(code bad)" != 0 ]
check "the action failed" [ "$(outcome bad)" = failure ]
check "decision=rolled-back" [ "$(out bad decision)" = rolled-back ]
check "verify-health failed" contains "$work/bad/act.log" "sluice verify-health: fail"
check "the install came from the cache" contains "$work/bad/act.log" "Cache restored from key"
check "the candidate has 0%" [ "$(router_state dev candidate_weight)" = 0 ]
check "v2 is still stable" [ "$(router_state dev stable upstream)" = "$v2" ]
check "the record says rolled_back" [ "$(json_field "$(artifact 102 sluice-record-shop-dev-1)/dev.json" status)" = rolled_back ]
check "no next environment" [ -z "$(out bad next-environment)" ]

echo "# a canary paused for approval is continued by mode resume"
action paused 103 environment=prd version=v2 candidate-upstream="$v2" pause-at=50 verify-duration=2s
check "exit 0" [ "$(code paused)" = 0 ]
check "decision=paused" [ "$(out paused decision)" = paused ]
check "weight=50" [ "$(out paused weight)" = 50 ]
check "the router holds 50%" [ "$(router_state prd candidate_weight)" = 50 ]
check "verify-health and promote were skipped" bash -c "! grep -q 'sluice verify-health' '$work/paused/act.log'"
paused_artifact=$(out paused record-artifact)
check "the paused record was uploaded as $paused_artifact" [ "$(json_field "$(artifact 103 "$paused_artifact")/prd.json" status)" = paused ]
action resumed 103 mode=resume environment=prd version=v2 verify-duration=2s record-artifact="$paused_artifact"
check "exit 0" [ "$(code resumed)" = 0 ]
check "gate was not run again" contains "$work/resumed/act.log" "resuming the paused canary"
check "decision=promoted" [ "$(out resumed decision)" = promoted ]
check "next-environment is empty after the last environment" [ -z "$(out resumed next-environment)" ]
check "v2 is stable in prd" [ "$(router_state prd stable upstream)" = "$v2" ]
check "the record artifact says promoted" [ "$(json_field "$(artifact 103 "$paused_artifact")/prd.json" status)" = promoted ]
action resumed-again 103 mode=resume environment=prd version=v2 record-artifact="$paused_artifact"
check "resuming a deployment that is not paused is refused" contains "$work/resumed-again/act.log" "nothing to resume"
check "v2 is still stable in prd" [ "$(router_state prd stable upstream)" = "$v2" ]

echo "# a blocked gate moves nothing and rolls nothing back"
action blocked 104 environment=prd version=v9 candidate-upstream="$v3"
check "exit non-zero" [ "$(code blocked)" != 0 ]
check "decision=blocked" [ "$(out blocked decision)" = blocked ]
check "rollback left it alone" contains "$work/blocked/act.log" "nothing to roll back: the deployment is blocked"
check "prd is untouched" [ "$(router_state prd stable upstream)" = "$v2" ] && [ "$(router_state prd candidate_weight)" = 0 ]

echo "# a missing input is refused before anything runs"
action noversion 105 environment=dev
check "exit non-zero" [ "$(code noversion)" != 0 ]
check "names the input" contains "$work/noversion/act.log" "the input 'version' is required"

echo "# a dispatched release with no tag and no commit is refused (the run's SHA is the branch head)"
action notag 106 environment=dev version=v7 candidate-upstream="$v2"
check "exit non-zero" [ "$(code notag)" != 0 ]
check "asks for the commit" contains "$work/notag/act.log" "no commit for release v7"
check "dev is untouched" [ "$(router_state dev candidate_weight)" = 0 ]

echo "# no step needed Python"
check "python was shadowed in the jobs" contains "$work/good/result/python3" "$work/nopython/python3"
check "no step called python3 or python" bash -c "! grep -q 'not installed (the action must not need it)' '$work'/*/act.log"

echo "# replay.sh re-judges the records of the run, as gh run download lays them out"
cp -r "$work/store/runs" "$work/downloaded"
PATH="$dev_bin:$PATH" "$root/scripts/replay.sh" --config "$work/sluice.toml" --out "$work/replay" "$work/downloaded" \
  >"$work/replay.out" 2>"$work/replay.err"
check "exit 1: the bad release fails again" [ $? = 1 ]
check "the bad release: recorded Fail, replayed Fail" contains "$work/replay.out" "recorded Fail, replayed Fail"
check "the good release: recorded Pass, replayed Pass" contains "$work/replay.out" "recorded Pass, replayed Pass"
check "the records are left as they were" diff -r "$work/store/runs" "$work/downloaded"
check "the blocked record has nothing to replay" contains "$work/replay.err" "no verdicts to replay"

echo "# replay.sh --router re-runs recorded deployments on a fresh embedded router"
bad_record=$(grep -rl '"version": "v3"' "$work/downloaded" | head -1)
good_record=$(artifact 101 sluice-record-shop-dev-1)/dev.json
PATH="$dev_bin:$PATH" "$root/scripts/replay.sh" --router --config "$work/sluice.toml" --out "$work/replay-good" \
  "$good_record" >"$work/replay-good.out" 2>"$work/replay-good.err"
check "exit 0: the good release is promoted again" [ $? = 0 ]
check "recorded promoted, replayed promoted" contains "$work/replay-good.out" "| promoted | promoted |"
check "the replay printed the step summaries" contains "$work/replay-good.out" "sluice promote"
PATH="$dev_bin:$PATH" "$root/scripts/replay.sh" --router --candidate-error-ratio 0.3 --config "$work/sluice.toml" \
  --out "$work/replay-bad" "$bad_record" >"$work/replay-bad.out" 2>"$work/replay-bad.err"
check "exit 0: the bad release, answering 30% errors, is rolled back again" [ $? = 0 ]
check "recorded rolled_back, replayed rolled_back" contains "$work/replay-bad.out" "| rolled_back | rolled_back |"
PATH="$dev_bin:$PATH" "$root/scripts/replay.sh" --router --config "$work/sluice.toml" --out "$work/replay-healthy" \
  "$bad_record" >"$work/replay-healthy.out" 2>"$work/replay-healthy.err"
check "exit 1: the bad release with a healthy candidate ends otherwise than recorded" [ $? = 1 ]
check "the difference is named" contains "$work/replay-healthy.out" "(differs)"

finish
