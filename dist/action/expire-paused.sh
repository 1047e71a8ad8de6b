#!/usr/bin/env bash
# The action's `mode: expire-paused` (dist/workflows/expire-paused.yml): finds
# the runs of the promotion workflow waiting for approval, downloads each
# one's record artifacts (sluice-record-*), runs `rollback --if-expired` on
# every record (only a canary paused past its pause_timeout is rolled back;
# anything else is left alone), and cancels a run whose canary it rolled
# back, so a late approval cannot continue it.
#
# Needs bash, curl, unzip and the installed binaries (SLUICE_BIN_DIR); talks
# to GitHub's REST API at GITHUB_API_URL with SLUICE_TOKEN (a token with
# actions: write; deployments: write for the github ledger). Inputs:
# SLUICE_WORKFLOW (the promotion workflow's file name), SLUICE_CONFIG.
set -euo pipefail

if [ -n "${SLUICE_BIN_DIR:-}" ]; then
  PATH="$SLUICE_BIN_DIR:$PATH"
fi
note() { echo "sluice expire-paused: $*" >&2; }
fail() {
  if [ "${GITHUB_ACTIONS:-}" = true ]; then
    echo "::error title=sluice expire-paused::$*"
  fi
  echo "sluice expire-paused: error: $*" >&2
  exit 2
}
[ -n "${SLUICE_TOKEN:-}" ] || fail "no token: pass the input 'github-token' (a token with actions: write)"
echo "::add-mask::$SLUICE_TOKEN"
workflow=${SLUICE_WORKFLOW:-promote.yml}
[[ $workflow =~ ^[A-Za-z0-9._-]+$ ]] || fail "workflow '$workflow' must be a workflow file name, e.g. promote.yml"
repo=${GITHUB_REPOSITORY:?the runner sets GITHUB_REPOSITORY}
api=${GITHUB_API_URL:-https://api.github.com}
config=${SLUICE_CONFIG:-sluice.toml}
[ -f "$config" ] || fail "config '$config' not found (relative to $PWD); pass the input 'config'"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# get URL OUT: a GET with the token; redirects followed (an artifact's zip).
get() {
  curl -fsSL --retry 3 --retry-delay 2 --max-time 120 -H "Authorization: Bearer $SLUICE_TOKEN" \
    -H "Accept: application/vnd.github+json" -H "X-GitHub-Api-Version: 2022-11-28" -o "$2" "$1"
}

get "$api/repos/$repo/actions/workflows/$workflow/runs?status=waiting&per_page=100" "$work/runs.json" ||
  fail "cannot list the waiting runs of $workflow (does the job's token have actions: read?)"
sluice inspect --json "$work/runs.json" 'workflow_runs[].id' >"$work/run-ids" ||
  fail "GitHub's list of runs could not be read"
mapfile -t runs <"$work/run-ids"
if [ ${#runs[@]} -eq 0 ]; then
  note "no run of $workflow is waiting for approval"
  exit 0
fi
status=0
for run in "${runs[@]}"; do
  get "$api/repos/$repo/actions/runs/$run/artifacts?per_page=100" "$work/artifacts-$run.json" ||
    { note "run $run: its artifacts cannot be listed"; status=1; continue; }
  if ! sluice inspect --json "$work/artifacts-$run.json" 'artifacts[].name' 'artifacts[].id' >"$work/fields-$run"; then
    note "run $run: GitHub's list of its artifacts could not be read"
    status=1
    continue
  fi
  count=$(($(wc -l <"$work/fields-$run") / 2))
  head -n "$count" "$work/fields-$run" >"$work/names-$run"
  tail -n +"$((count + 1))" "$work/fields-$run" >"$work/ids-$run"
  mapfile -t names <"$work/names-$run"
  mapfile -t ids <"$work/ids-$run"
  expired=0
  for i in "${!names[@]}"; do
    case "${names[$i]}" in sluice-record-*) ;; *) continue ;; esac
    dir=$work/$run/${names[$i]}
    mkdir -p "$dir"
    if ! get "$api/repos/$repo/actions/artifacts/${ids[$i]}/zip" "$dir.zip" || ! unzip -q -o "$dir.zip" -d "$dir"; then
      note "run $run: the artifact ${names[$i]} cannot be downloaded"
      status=1
      continue
    fi
    for record in "$dir"/*.json; do
      [ -f "$record" ] || continue
      env_name=$(basename "$record" .json)
      out=$(INPUT_ENVIRONMENT=$env_name INPUT_RECORD=$record INPUT_CONFIG=$config GITHUB_TOKEN=$SLUICE_TOKEN \
        rollback --if-expired) || { status=1; continue; }
      echo "$out"
      if grep -qx 'decision=expired' <<<"$out"; then
        note "run $run: the paused canary in $env_name expired and was rolled back"
        expired=1
      fi
    done
  done
  if [ "$expired" = 1 ]; then
    if curl -fsS -X POST --max-time 60 -H "Authorization: Bearer $SLUICE_TOKEN" \
      -H "Accept: application/vnd.github+json" "$api/repos/$repo/actions/runs/$run/cancel" >/dev/null; then
      note "run $run: cancelled, so a late approval cannot continue it"
    else
      note "run $run: could not be cancelled; a late approval finds the pause expired and rolls back again"
      status=1
    fi
  fi
done
exit "$status"
