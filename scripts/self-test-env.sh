#!/usr/bin/env bash
# The demo environment for .github/workflows/self-test.yml: the demo app in
# three versions and one embedded router per environment on fixed 127.0.0.1
# ports (so two jobs see the same addresses), steady load, and a config.
#
#   self-test-env.sh start [--paused-at N]   build and start; outputs config, v2, v3
#   self-test-env.sh check-first-job         checks the first job's outputs (env vars)
#   self-test-env.sh check-second-job        checks the resumed job's outputs
#   self-test-env.sh stop                    stops what start started
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
state=${RUNNER_TEMP:-/tmp}/sluice-self-test
mkdir -p "$state"
output() { printf '%s=%s\n' "$1" "$2" | tee -a "${GITHUB_OUTPUT:-/dev/null}"; }
fail() { echo "::error title=self-test::$*"; exit 1; }
app() { echo "http://127.0.0.1:1810$1"; }
router_listen() { [ "$1" = dev ] && echo 127.0.0.1:18111 || echo 127.0.0.1:18121; }
router_admin() { [ "$1" = dev ] && echo 127.0.0.1:18112 || echo 127.0.0.1:18122; }
weight() { curl -fsS "http://$(router_admin "$1")/v1/state" | python3 -c 'import json,sys; print(json.load(sys.stdin)["candidate_weight"])'; }
stable() { curl -fsS "http://$(router_admin "$1")/v1/state" | python3 -c 'import json,sys; print(json.load(sys.stdin)["stable"]["upstream"])'; }

case "${1:-}" in
  start)
    (cd "$root" && cargo build --release --locked --quiet -p sluice-router -p sluice-demo)
    bin=${CARGO_TARGET_DIR:-$root/target}/release
    launch() {
      local name=$1; shift
      nohup "$@" --ready-file "$state/$name.ready" >"$state/$name.log" 2>&1 &
      echo $! >>"$state/pids"
      for _ in $(seq 1 100); do [ -s "$state/$name.ready" ] && return 0; sleep 0.1; done
      fail "$name did not start (see $state/$name.log)"
    }
    launch app-v1 "$bin/sluice-demo-app" --listen 127.0.0.1:18101 --version v1
    launch app-v2 "$bin/sluice-demo-app" --listen 127.0.0.1:18102 --version v2
    launch app-v3 "$bin/sluice-demo-app" --listen 127.0.0.1:18103 --version v3 --error-ratio 0.3 --seed 3
    for env in dev prd; do
      launch "router-$env" "$bin/sluice-router" --listen "$(router_listen "$env")" --admin "$(router_admin "$env")" --stable "$(app 1)"
      nohup "$bin/sluice-loadgen" --url "http://$(router_listen "$env")/" --rps 100 --duration 20m >/dev/null 2>&1 &
      echo $! >>"$state/pids"
    done
    if [ "${2:-}" = --paused-at ]; then
      # The runner of the first job is gone: put prd back where it paused.
      admin="http://$(router_admin prd)"
      curl -fsS -X PUT -H 'content-type: application/json' -d "{\"candidate\":\"$(app 2)\"}" "$admin/v1/upstreams" >/dev/null
      curl -fsS -X PUT -H 'content-type: application/json' -d "{\"candidate_weight\":$3}" "$admin/v1/weights" >/dev/null
    fi
    config=$state/sluice.toml
    cat >"$config" <<TOML
app = "shop"

[ledger]
kind = "file"
path = "ledger.jsonl"

[analysis]
interval = "1s"

[defaults]
strategy = { kind = "canary", stages = [50, 100], stage_duration = "3s" }
pause_timeout = "2h"

[[defaults.check]]
name = "error-rate"
kind = "error_rate"
max = 0.02
min_samples = 20
critical = true

[[environment]]
name = "dev"
router = { kind = "local", admin_url = "http://$(router_admin dev)" }

[[environment]]
name = "prd"
allow_out_of_order = true   # each job of the self-test has its own file ledger
router = { kind = "local", admin_url = "http://$(router_admin prd)" }
TOML
    output config "$config"
    output v2 "$(app 2)"
    output v3 "$(app 3)"
    ;;
  check-first-job)
    [ -x "$SETUP_BIN/gate" ] || fail "setup mode did not install gate in $SETUP_BIN"
    [ "$GOOD_DECISION" = promoted ] || fail "good release: decision $GOOD_DECISION, expected promoted"
    [ "$GOOD_NEXT" = prd ] || fail "good release: next-environment $GOOD_NEXT, expected prd"
    [ -f "$GOOD_RECORD" ] || fail "good release: no record at $GOOD_RECORD"
    [ "$BAD_OUTCOME" = failure ] || fail "bad release: the action's outcome is $BAD_OUTCOME, expected failure"
    [ "$BAD_DECISION" = rolled-back ] || fail "bad release: decision $BAD_DECISION, expected rolled-back"
    [ "$(weight dev)" = 0 ] || fail "dev: candidate weight $(weight dev) after the rollback"
    [ "$(stable dev)" = "$(app 2)" ] || fail "dev: stable is $(stable dev), expected v2"
    [ "$PAUSED_DECISION" = paused ] || fail "paused canary: decision $PAUSED_DECISION"
    [ "$PAUSED_WEIGHT" = 50 ] || fail "paused canary: weight $PAUSED_WEIGHT"
    [ "$(weight prd)" = 50 ] || fail "prd: candidate weight $(weight prd), expected 50"
    echo "self-test: first job as expected"
    ;;
  check-second-job)
    [ "$DECISION" = promoted ] || fail "resumed canary: decision $DECISION, expected promoted"
    [ -z "$NEXT" ] || fail "resumed canary: next-environment $NEXT after the last environment"
    [ "$(stable prd)" = "$(app 2)" ] || fail "prd: stable is $(stable prd), expected v2"
    echo "self-test: second job as expected"
    ;;
  stop)
    if [ -f "$state/pids" ]; then
      while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$state/pids"
      rm -f "$state/pids"
    fi
    ;;
  *) sed -n '2,10p' "$0" >&2; exit 2 ;;
esac
