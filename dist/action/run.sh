#!/usr/bin/env bash
# The steps of the composite action (action.yml), one sub-command each:
#
#   run.sh prepare    check the inputs, mask the token, resolve the commit,
#                     name the record and its artifact
#   run.sh gate       gate (mode promote)
#   run.sh shift      shift-traffic: the plan, stopping at --pause-at (mode
#                     promote); continuing a paused canary (mode resume)
#   run.sh verify     verify-health at 100%
#   run.sh promote    promote
#   run.sh rollback   rollback, when traffic may have moved
#   run.sh finish     the action's outputs, from the record
#   run.sh github-cache  the config's GitHub API cache folder and a cache key
#   run.sh report     dora-report of every environment (mode report)
#
# action.yml passes the inputs as SLUICE_* variables through `env:` (never
# `${{ }}` inside a script); this script hands the non-empty ones to the
# binaries as the INPUT_* variables their flags read. It needs bash and the
# installed binaries, nothing else (no Python, no jq): the record is read
# with `sluice inspect`, so it runs in any job container.
#
# Inputs: SLUICE_MODE (promote or resume), SLUICE_ENVIRONMENT,
# SLUICE_VERSION_INPUT (the release), SLUICE_COMMIT_INPUT (prepare) or
# SLUICE_COMMIT (resolved), SLUICE_CONFIG, SLUICE_STRATEGY,
# SLUICE_CANDIDATE_UPSTREAM, SLUICE_PAUSE_AT, SLUICE_VERIFY_DURATION,
# SLUICE_RECORD (path; set by prepare), SLUICE_RECORD_ARTIFACT, SLUICE_EVENT
# (the run's event name), SLUICE_TOKEN (masked), SLUICE_BIN_DIR.
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
# record_field KEY: a top-level field of the record; nothing when there is
# no record. A record that cannot be read is an error, never "no record".
record_field() {
  [ -f "${SLUICE_RECORD:-}" ] || return 0
  sluice inspect --record "$SLUICE_RECORD" "$1"
}
safe_name() { [[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9._+-]*$ ]]; }
is_sha() { [[ $1 =~ ^[0-9a-f]{40}$ ]]; }

common() {
  [ -n "${SLUICE_ENVIRONMENT:-}" ] || fail "the input 'environment' is required (e.g. dev)"
  [ -n "${SLUICE_RECORD:-}" ] || fail "no record path; run the prepare step first"
  pass ENVIRONMENT "$SLUICE_ENVIRONMENT"
  pass CONFIG "${SLUICE_CONFIG:-sluice.toml}"
  pass RECORD "$SLUICE_RECORD"
}

# Sets `commit`: the commit of the release: the input, else the tag's commit
# in the checkout, else the run's SHA outside workflow_dispatch.
resolve_commit() {
  local version=$1 given=${SLUICE_COMMIT_INPUT:-} tagged=
  tagged=$(git rev-parse --verify --quiet "refs/tags/$version^{commit}" 2>/dev/null || true)
  if [ -n "$given" ]; then
    is_sha "$given" || fail "commit '$given' is not a full 40-character commit SHA"
    if [ -n "$tagged" ] && [ "$tagged" != "$given" ]; then
      fail "the tag $version points to $tagged, not to the input commit $given; pass the release's own commit (or none: the tag's is used)"
    fi
    commit=$given
  elif [ -n "$tagged" ]; then
    note "release $version: the commit of its tag, $tagged"
    commit=$tagged
  elif [ "${SLUICE_EVENT:-}" = workflow_dispatch ]; then
    fail "no commit for release $version: the checkout has no tag $version (check out with fetch-depth: 0, or push the tag) and in a workflow_dispatch run the run's SHA is the branch head, not the release; pass the input 'commit'"
  elif [ -n "${GITHUB_SHA:-}" ]; then
    note "release $version has no tag in the checkout: the run's commit, $GITHUB_SHA"
    commit=$GITHUB_SHA
  fi
}

# The app the config names (its top-level `app = "..."`), for the artifact
# name; empty when it cannot be read here (the binaries check the config).
config_app() {
  sed -n 's/^app[[:space:]]*=[[:space:]]*"\([A-Za-z0-9._+-]*\)".*/\1/p' "$1" | head -1
}

cmd=${1:-}
mode=${SLUICE_MODE:-promote}
case "$cmd" in
  prepare)
    if [ -n "${SLUICE_TOKEN:-}" ]; then
      echo "::add-mask::$SLUICE_TOKEN"
    fi
    case "$mode" in promote | resume) ;; *) fail "mode '$mode' is not one of promote, resume, expire-paused, report, setup" ;; esac
    env_name=${SLUICE_ENVIRONMENT:-}
    [ -n "$env_name" ] || fail "the input 'environment' is required (e.g. dev)"
    safe_name "$env_name" || fail "environment '$env_name' may only contain letters, digits, '.', '_', '+' and '-'"
    version=${SLUICE_VERSION_INPUT:-}
    [ -n "$version" ] || fail "the input 'version' is required (the release to deploy, e.g. v1.4.2)"
    safe_name "$version" || fail "version '$version' may only contain letters, digits, '.', '_', '+' and '-'"
    config=${SLUICE_CONFIG:-sluice.toml}
    [ -f "$config" ] || fail "config '$config' not found (relative to $PWD); pass the input 'config'"
    if [ -n "${SLUICE_PAUSE_AT:-}" ]; then
      [[ $SLUICE_PAUSE_AT =~ ^[0-9]{1,2}$ ]] || fail "pause-at '$SLUICE_PAUSE_AT' must be a stage weight below 100, e.g. 25"
      [ "$mode" = promote ] || fail "pause-at is for mode promote; mode resume continues the paused canary to 100%"
    fi
    artifact=${SLUICE_RECORD_ARTIFACT:-}
    if [ "$mode" = resume ]; then
      [ -n "$artifact" ] || fail "mode resume needs the input 'record-artifact': the paused job's output record-artifact (e.g. \${{ needs.canary.outputs.record-artifact }})"
    elif [ -z "$artifact" ]; then
      app=$(config_app "$config")
      artifact=sluice-record-${app:+$app-}$env_name-${GITHUB_RUN_ATTEMPT:-1}
    fi
    safe_name "$artifact" || fail "record-artifact '$artifact' may only contain letters, digits, '.', '_', '+' and '-'"
    commit=
    if [ "$mode" = promote ]; then
      resolve_commit "$version"
    fi
    # A fresh folder per job: a new deployment never finds an old record.
    dir=${RUNNER_TEMP:-${TMPDIR:-/tmp}}/sluice-records/$artifact
    mkdir -p "$dir"
    output record "$dir/$env_name.json"
    output record-dir "$dir"
    output record-artifact "$artifact"
    output commit "$commit"
    ;;
  gate)
    common
    if [ -f "$SLUICE_RECORD" ]; then
      fail "a record exists at $SLUICE_RECORD before the gate of a new deployment; nothing was changed"
    fi
    pass RELEASE "$SLUICE_VERSION_INPUT"
    pass COMMIT "${SLUICE_COMMIT:-}"
    pass STRATEGY "${SLUICE_STRATEGY:-}"
    exec gate
    ;;
  shift)
    common
    pass CANDIDATE_UPSTREAM "${SLUICE_CANDIDATE_UPSTREAM:-}"
    if [ "$mode" = resume ]; then
      status=$(record_field status)
      version=$(record_field version)
      [ -n "$status" ] || fail "no record was downloaded to $SLUICE_RECORD; nothing to resume"
      [ "$version" = "$SLUICE_VERSION_INPUT" ] ||
        fail "the record is for release $version, not $SLUICE_VERSION_INPUT; nothing was changed"
      if [ "$status" != paused ]; then
        fail "nothing to resume: the deployment of $version in $SLUICE_ENVIRONMENT is $status, not paused (a rejected or expired approval rolls it back; start a new promotion)"
      fi
      note "resuming the paused canary of $version in $SLUICE_ENVIRONMENT"
    else
      pass PAUSE_AT "${SLUICE_PAUSE_AT:-}"
    fi
    exec shift-traffic
    ;;
  verify | promote)
    common
    if [ "$cmd" = verify ]; then
      pass DURATION "${SLUICE_VERIFY_DURATION:-}"
      exec verify-health
    fi
    exec promote
    ;;
  rollback)
    common
    status=$(record_field status) || {
      note "the record $SLUICE_RECORD cannot be read; rolling back the live router"
      status=unreadable
    }
    case "$status" in
      "")
        note "no record at $SLUICE_RECORD: the gate did not admit a deployment, nothing moved, nothing to roll back"
        exit 0
        ;;
      # Ended, or never moved traffic. A promoted release is never undone
      # here (rollback would revert it): a later failure of this job, such
      # as a hand-off that could not be dispatched, leaves it stable.
      blocked | waiting | promoted | rolled_back | abandoned)
        note "nothing to roll back: the deployment is $status"
        exit 0
        ;;
      admitted)
        if [ -z "$(record_field router_before)" ]; then
          note "nothing to roll back: no traffic moved yet"
          exit 0
        fi
        ;;
      # shifting, paused, verified, and any status this script does not
      # know: rollback is idempotent, so it runs.
    esac
    pass REASON "${SLUICE_ROLLBACK_REASON:-the promotion job failed or was cancelled}"
    exec rollback
    ;;
  github-cache)
    # The config's ETag cache folder, and a cache key unique to this job of
    # this run attempt (actions/cache keys are immutable).
    config=${SLUICE_CONFIG:-sluice.toml}
    [ -f "$config" ] || fail "config '$config' not found (relative to $PWD); pass the input 'config'"
    dir=$(sluice inspect --config "$config" github.cache_dir) || fail "cannot read the config '$config' (see above)"
    mkdir -p "$dir"
    output path "$dir"
    output key "sluice-github-api-${GITHUB_RUN_ID:-local}-${GITHUB_RUN_ATTEMPT:-1}-${GITHUB_JOB:-job}-$(date +%s)"
    output restore-key "sluice-github-api-"
    ;;
  report)
    if [ -n "${SLUICE_TOKEN:-}" ]; then
      echo "::add-mask::$SLUICE_TOKEN"
      export GITHUB_TOKEN="$SLUICE_TOKEN"
    fi
    config=${SLUICE_CONFIG:-sluice.toml}
    [ -f "$config" ] || fail "config '$config' not found (relative to $PWD); pass the input 'config'"
    dir=${RUNNER_TEMP:-${TMPDIR:-/tmp}}/sluice-report
    mkdir -p "$dir"
    output report-dir "$dir"
    exec dora-report --config "$config" --all-environments --since "${SLUICE_SINCE:-90d}" \
      --json "$dir/dora.json" --markdown "$dir/dora.md" --svg "$dir/dora.svg"
    ;;
  finish)
    status=
    if [ -f "${SLUICE_RECORD:-}" ]; then
      output has-record true
      status=$(record_field status) || status=unreadable
    else
      output has-record false
    fi
    case "$status" in
      promoted) decision=promoted ;;
      paused) decision=paused ;;
      blocked | waiting) decision=blocked ;;
      rolled_back) decision=rolled-back ;;
      *) decision=failed ;;
    esac
    output decision "$decision"
    output status "${status:-none}"
    weight=
    if [ -f "${SLUICE_RECORD:-}" ]; then
      weight=$(record_field candidate_weight) || weight=
    fi
    output weight "$weight"
    if [ -n "${SLUICE_NEXT_ENVIRONMENT:-}" ] && [ "$decision" = promoted ]; then
      output next-environment "$SLUICE_NEXT_ENVIRONMENT"
    else
      output next-environment ""
    fi
    ;;
  *)
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
