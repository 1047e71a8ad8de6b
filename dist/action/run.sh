#!/usr/bin/env bash
# The steps of the composite action (action.yml), one sub-command each:
#
#   run.sh prepare    check the inputs, mask the token, name the record
#   run.sh gate       gate (skipped when resuming a paused canary)
#   run.sh shift      shift-traffic: the strategy's plan, or up to --pause-at
#   run.sh verify     verify-health at 100% (skipped while paused)
#   run.sh promote    promote (skipped while paused)
#   run.sh rollback   rollback, when traffic may have moved
#   run.sh finish     the action's outputs, from the record
#
# action.yml passes the inputs as SLUICE_* variables through `env:` (never
# `${{ }}` inside a script); this script hands the non-empty ones to the
# binaries as the INPUT_* variables their flags read. The same script runs
# locally (scripts/replay.sh --action) and in the tests, with GITHUB_OUTPUT,
# GITHUB_STEP_SUMMARY, RUNNER_TEMP, ... set as a runner sets them.
#
# Inputs: SLUICE_ENVIRONMENT, SLUICE_VERSION_INPUT (the release),
# SLUICE_COMMIT, SLUICE_CONFIG, SLUICE_STRATEGY, SLUICE_CANDIDATE_UPSTREAM,
# SLUICE_PAUSE_AT, SLUICE_VERIFY_DURATION, SLUICE_RECORD (path; set by
# prepare), SLUICE_TOKEN (masked, exported as GITHUB_TOKEN).
set -euo pipefail

# The binaries installed by dist/install.sh (its bin-dir output).
if [ -n "${SLUICE_BIN_DIR:-}" ]; then
  PATH="$SLUICE_BIN_DIR:$PATH"
fi

# Nothing from the caller's environment reaches a flag by accident.
while IFS='=' read -r name _; do
  case "$name" in INPUT_*) unset "$name" ;; esac
done < <(env)

fail() {
  if [ "${GITHUB_ACTIONS:-}" = true ]; then
    echo "::error title=sluice::$*"
  fi
  echo "sluice action: error: $*" >&2
  exit 2
}
note() { echo "sluice action: $*" >&2; }
output() {
  if [ -n "${GITHUB_OUTPUT:-}" ]; then
    printf '%s=%s\n' "$1" "$2" >>"$GITHUB_OUTPUT"
  fi
  printf '%s=%s\n' "$1" "$2"
}
# pass NAME VALUE: export INPUT_NAME=VALUE when VALUE is not empty.
pass() {
  if [ -n "$2" ]; then
    export "INPUT_$1=$2"
  fi
}
# record_field KEY: a top-level field of the record, or nothing.
record_field() {
  [ -f "${SLUICE_RECORD:-}" ] || return 0
  python3 -c 'import json,sys; v=json.load(open(sys.argv[1])).get(sys.argv[2]); print("" if v is None else v)' \
    "$SLUICE_RECORD" "$1" 2>/dev/null || true
}
safe_name() { [[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9._+-]*$ ]]; }

common() {
  [ -n "${SLUICE_ENVIRONMENT:-}" ] || fail "the input 'environment' is required (e.g. dev)"
  [ -n "${SLUICE_RECORD:-}" ] || fail "no record path; run the prepare step first"
  pass ENVIRONMENT "$SLUICE_ENVIRONMENT"
  pass CONFIG "${SLUICE_CONFIG:-sluice.toml}"
  pass RECORD "$SLUICE_RECORD"
}

cmd=${1:-}
case "$cmd" in
  prepare)
    if [ -n "${SLUICE_TOKEN:-}" ]; then
      echo "::add-mask::$SLUICE_TOKEN"
    fi
    env_name=${SLUICE_ENVIRONMENT:-}
    [ -n "$env_name" ] || fail "the input 'environment' is required (e.g. dev)"
    safe_name "$env_name" || fail "environment '$env_name' may only contain letters, digits, '.', '_', '+' and '-'"
    [ -n "${SLUICE_VERSION_INPUT:-}" ] || fail "the input 'version' is required (the release to deploy, e.g. v1.4.2)"
    safe_name "$SLUICE_VERSION_INPUT" || fail "version '$SLUICE_VERSION_INPUT' may only contain letters, digits, '.', '_', '+' and '-'"
    config=${SLUICE_CONFIG:-sluice.toml}
    [ -f "$config" ] || fail "config '$config' not found (relative to $PWD); pass the input 'config'"
    if [ -n "${SLUICE_PAUSE_AT:-}" ] && ! [[ $SLUICE_PAUSE_AT =~ ^[0-9]{1,2}$ ]]; then
      fail "pause-at '$SLUICE_PAUSE_AT' must be a stage weight below 100, e.g. 25"
    fi
    artifact=${SLUICE_RECORD_ARTIFACT:-sluice-record-$env_name}
    safe_name "$artifact" || fail "record-artifact '$artifact' may only contain letters, digits, '.', '_', '+' and '-'"
    dir=${RUNNER_TEMP:-${TMPDIR:-/tmp}}/sluice-records/$artifact
    mkdir -p "$dir"
    output record "$dir/$env_name.json"
    output record-dir "$dir"
    output record-artifact "$artifact"
    ;;
  gate)
    common
    status=$(record_field status)
    if [ "$status" = paused ]; then
      note "resuming the paused canary of $(record_field version) in $SLUICE_ENVIRONMENT: gate already allowed it"
      output decision resume
      exit 0
    fi
    pass RELEASE "$SLUICE_VERSION_INPUT"
    pass COMMIT "${SLUICE_COMMIT:-}"
    pass STRATEGY "${SLUICE_STRATEGY:-}"
    exec gate
    ;;
  shift)
    common
    pass CANDIDATE_UPSTREAM "${SLUICE_CANDIDATE_UPSTREAM:-}"
    # Resuming: continue the plan; --pause-at only stops the first run.
    if [ "$(record_field status)" != paused ]; then
      pass PAUSE_AT "${SLUICE_PAUSE_AT:-}"
    fi
    exec shift-traffic
    ;;
  verify | promote)
    common
    if [ "$(record_field status)" = paused ]; then
      note "$cmd skipped: the canary is paused for approval"
      exit 0
    fi
    if [ "$cmd" = verify ]; then
      pass DURATION "${SLUICE_VERIFY_DURATION:-}"
      exec verify-health
    fi
    exec promote
    ;;
  rollback)
    common
    status=$(record_field status)
    case "$status" in
      "")
        note "no record at $SLUICE_RECORD: nothing moved, nothing to roll back"
        exit 0
        ;;
      blocked | promoted)
        note "nothing to roll back: the deployment is $status"
        exit 0
        ;;
      admitted)
        if [ -z "$(record_field router_before)" ]; then
          note "nothing to roll back: no traffic moved yet"
          exit 0
        fi
        ;;
    esac
    pass REASON "${SLUICE_ROLLBACK_REASON:-the promotion job failed or was cancelled}"
    exec rollback
    ;;
  finish)
    status=$(record_field status)
    case "$status" in
      promoted) decision=promoted ;;
      paused) decision=paused ;;
      blocked) decision=blocked ;;
      rolled_back) decision=rolled-back ;;
      "") decision=failed ;;
      *) decision=failed ;;
    esac
    output decision "$decision"
    output status "${status:-none}"
    output weight "$(record_field candidate_weight)"
    if [ -n "${SLUICE_NEXT_ENVIRONMENT:-}" ] && [ "$decision" = promoted ]; then
      output next-environment "$SLUICE_NEXT_ENVIRONMENT"
    else
      output next-environment ""
    fi
    ;;
  *)
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
