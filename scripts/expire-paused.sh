#!/usr/bin/env bash
# For .github/workflows/expire-paused.yml: finds promote.yml runs waiting for
# approval, downloads each one's paused record and runs
# `rollback --if-expired` on it; a run whose canary was rolled back is
# cancelled. Needs gh with GH_TOKEN (actions: write) and the sluice binaries
# on PATH.
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
gh run list --workflow promote.yml --status waiting --json databaseId --jq '.[].databaseId' >"$work/runs"
[ -s "$work/runs" ] || { echo "no promotion is waiting for approval"; exit 0; }
status=0
while read -r run; do
  dir=$work/$run
  if ! gh run download "$run" --pattern 'sluice-record-*' --dir "$dir"; then
    echo "::warning::run $run: no record artifact to check"
    continue
  fi
  for record in "$dir"/sluice-record-*/*.json; do
    [ -f "$record" ] || continue
    env_name=$(basename "$record" .json)
    out=$(INPUT_ENVIRONMENT=$env_name INPUT_RECORD=$record rollback --if-expired) || { status=1; continue; }
    echo "$out"
    if grep -qx 'decision=expired' <<<"$out"; then
      echo "run $run: the paused canary in $env_name expired and was rolled back; cancelling the run"
      gh run cancel "$run" || status=1
    fi
  done
done <"$work/runs"
exit "$status"
