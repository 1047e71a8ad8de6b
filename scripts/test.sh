#!/usr/bin/env bash
# The test suite: formatting, lints, unit and integration tests, the
# end-to-end tests against the real router and demo app, and the demo itself.
#
#   scripts/test.sh            everything
#   SLUICE_SKIP_DEMO=1 scripts/test.sh   without the demo run
#   SLUICE_SKIP_FUZZ=1 scripts/test.sh   without the fuzzing (SLUICE_FUZZ_SECONDS per target, default 20)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

section() { printf '\n== %s\n' "$*"; }

section "tools the tests need (scripts/setup-tools.sh installs what is missing)"
scripts/setup-tools.sh

section "workflows and the action: actionlint, zizmor; scripts: shellcheck"
for tool in actionlint zizmor shellcheck; do
  command -v "$tool" >/dev/null || {
    echo "$tool is not installed and scripts/setup-tools.sh could not install it" >&2
    exit 1
  }
done
# Every workflow in .github/workflows (and action.yml through their
# `uses: ./`), and the workflow templates users copy (dist/workflows).
actionlint .github/workflows/*.yml dist/workflows/*.yml
zizmor --offline --config .github/zizmor.yml action.yml .github/workflows/ dist/workflows/*.yml
shellcheck -x dist/*.sh dist/action/run.sh scripts/*.sh

section "cargo fmt --check"
cargo fmt --all -- --check

section "cargo clippy (warnings denied)"
cargo clippy --locked --workspace --all-targets --quiet -- -D warnings

# What scripts/demo.sh builds: the steps without the AWS SDK and octocrab.
# Linted so its cfg branches cannot rot, and its refusal of a config that
# needs them (exit 2, naming the key) tested in that build (in the demo's
# profile, whose dependencies the demo then reuses).
section "the lean build (--no-default-features): clippy, and its refusal of AWS and GitHub keys"
cargo clippy --locked -p sluice-cli -p sluice-router -p sluice-demo --no-default-features --all-targets --quiet -- -D warnings
cargo test --locked --profile demo -p sluice-cli --no-default-features --lib --quiet features::

section "build the binaries the end-to-end tests run"
cargo build --locked --workspace --bins --quiet

section "moto (AWS emulator) for the AWS tests"
if command -v moto_server >/dev/null; then
  echo "moto_server: $(command -v moto_server)"
elif [ -n "${CI:-}" ]; then
  echo "moto_server is not on PATH; CI must run the AWS tests (scripts/setup-tools.sh installs moto)" >&2
  exit 1
else
  echo "moto_server is not on PATH: the AWS tests will be skipped (pip install 'moto[server]==5.2.5')"
fi

# Includes the end-to-end tests (tests/, crate sluice-e2e: one test binary,
# with the workflow scenarios, the shipped workflows and the action on act,
# against the GitHub fake and the routers); they run the binaries built
# above.
section "cargo test (with the workflow scenarios on act)"
cargo test --locked --workspace --no-fail-fast

section "dist/install.sh with a local archive and manifest (scripts/test-dist.sh)"
scripts/test-dist.sh

section "the action on act against the embedded router, and replay.sh (scripts/test-action.sh)"
scripts/test-action.sh

section "fuzzing: record, config, durations, ledger (scripts/fuzz.sh, ${SLUICE_FUZZ_SECONDS:-20}s each)"
if [ -z "${SLUICE_SKIP_FUZZ:-}" ]; then
  scripts/fuzz.sh "${SLUICE_FUZZ_SECONDS:-20}"
fi

if [ -z "${SLUICE_SKIP_DEMO:-}" ]; then
  # The README's quick start, as written (but the clone: this is one).
  section "the README's quick start (scripts/demo.sh)"
  quick_start=$(awk '/^## Quick start/{s=1} s&&/^```sh/{f=1;next} f&&/^```/{exit} f' README.md | grep -v '^git clone')
  printf '%s\n' "$quick_start"
  [ -n "$quick_start" ] || { echo "README.md has no quick start block" >&2; exit 1; }
  bash -euo pipefail -c "$quick_start"
fi
