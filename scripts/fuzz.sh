#!/usr/bin/env bash
# Fuzzes what users and earlier jobs hand to sluice: the record, the config,
# durations and strategy overrides, and the ledger (with the DORA renderers).
# Each target runs for SECONDS (default 60) from the seeds in fuzz/seeds plus
# whatever corpus earlier runs left in fuzz/corpus, with the tokens of
# fuzz/dicts/TARGET.dict (the record's plan and edge values, keys given twice,
# ids with path parts). A crash leaves its input
# in fuzz/artifacts/TARGET/ and makes this script exit 1.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     targets: record config duration ledger
#
# cargo-fuzz needs nightly flags; the machine's stable toolchain accepts them
# with RUSTC_BOOTSTRAP=1 (no other toolchain can be fetched here).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/fuzz"

seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(record config duration ledger)

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz (cargo install cargo-fuzz --locked)" >&2
  cargo install cargo-fuzz --locked --quiet
fi
export RUSTC_BOOTSTRAP=1

failed=()
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target" "artifacts/$target"
  echo "== fuzz $target for ${seconds}s" >&2
  dict=()
  [ -f "dicts/$target.dict" ] && dict=(-dict="dicts/$target.dict")
  if ! cargo fuzz run "$target" "corpus/$target" "seeds/$target" -- "${dict[@]}" \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="artifacts/$target/" 2> "artifacts/$target/log.txt"; then
    failed+=("$target")
    tail -40 "artifacts/$target/log.txt" >&2
  fi
  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ +DONE)' "artifacts/$target/log.txt" \
    | sed "s/^/fuzz $target: /" >&2 || true
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: crashes in ${failed[*]}; inputs are in fuzz/artifacts/" >&2
  exit 1
fi
echo "fuzz: ${targets[*]}: no crash in ${seconds}s each" >&2
