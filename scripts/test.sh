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

section "cargo fmt --check"
cargo fmt --all -- --check

section "cargo clippy (warnings denied)"
cargo clippy --locked --workspace --all-targets --quiet -- -D warnings

section "build the binaries the end-to-end tests run"
cargo build --locked --workspace --bins --quiet

section "cargo test"
cargo test --locked --workspace --no-fail-fast

section "fuzzing: record, config, durations, ledger (scripts/fuzz.sh, ${SLUICE_FUZZ_SECONDS:-20}s each)"
if [ -z "${SLUICE_SKIP_FUZZ:-}" ]; then
  scripts/fuzz.sh "${SLUICE_FUZZ_SECONDS:-20}"
fi

if [ -z "${SLUICE_SKIP_DEMO:-}" ]; then
  section "the demo (scripts/demo.sh)"
  rm -rf "$root/out/test-demo"
  scripts/demo.sh "$root/out/test-demo"
fi
