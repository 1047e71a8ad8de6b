#!/usr/bin/env bash
# Measures the two ways to ship the six steps, for dist/README.md:
# six separate executables, or one multi-call executable with six links.
# Prints each layout's executable and .tar.gz sizes (what the action
# downloads, and what actions/cache stores and restores), and the setup time
# from a warm cache (the archive is already on disk: verify its SHA-256,
# unpack, link), median of N runs; then the same for the real
# `dist/install.sh install` of the multi-call archive.
#
#   scripts/measure-dist.sh [N]      (default N = 20; release build of the host)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=dist/lib.sh
. "$root/dist/lib.sh"
runs=${1:-20}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
steps=(gate shift-traffic verify-health promote rollback dora-report)
(cd "$root" && cargo build --release --locked --quiet -p sluice-cli --bins)
rel=$CARGO_TARGET_DIR/release
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/six" "$work/one"
for s in "${steps[@]}"; do cp "$rel/$s" "$work/six/"; done
cp "$rel/sluice" "$work/one/"
tar -C "$work/six" -cf - . | gzip -9n >"$work/six.tar.gz"
tar -C "$work/one" -cf - . | gzip -9n >"$work/one.tar.gz"

bytes() { wc -c <"$1" | tr -d ' '; }
mib() { awk -v b="$1" 'BEGIN {printf "%.2f MiB", b / 1048576}'; }
now_ns() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

# warm LAYOUT: verify, unpack and (for one) link, N times; median in ms.
warm() {
  local layout=$1 archive=$work/$1.tar.gz sum i t0 dest
  sum=$(sha256 "$archive")
  for i in $(seq 1 "$runs"); do
    dest=$work/unpack-$layout-$i
    t0=$(now_ns)
    [ "$(sha256 "$archive")" = "$sum" ]
    mkdir -p "$dest"
    tar -xzf "$archive" -C "$dest"
    if [ "$layout" = one ]; then for s in "${steps[@]}"; do ln -sf sluice "$dest/$s"; done; fi
    echo $(( ($(now_ns) - t0) / 1000 ))
    rm -rf "$dest"
  done | median | awk '{printf "%.1f ms", $1 / 1000}'
}

six_exe=0
for s in "${steps[@]}"; do six_exe=$((six_exe + $(bytes "$rel/$s"))); done
echo "host: $(uname -sm), sluice $(sluice_version "$root"), release profile, $runs runs each"
printf '%-34s %14s %14s %18s\n' layout executables "archive .tar.gz" "warm setup (median)"
printf '%-34s %14s %14s %18s\n' "six separate executables" "$(mib "$six_exe")" "$(mib "$(bytes "$work/six.tar.gz")")" "$(warm six)"
printf '%-34s %14s %14s %18s\n' "one multi-call executable + links" "$(mib "$(bytes "$rel/sluice")")" "$(mib "$(bytes "$work/one.tar.gz")")" "$(warm one)"

# The real installer, warm: the archive is in SLUICE_HOME as actions/cache restores it.
target=$(sluice_target "$root" Linux X64)
case "$(uname -sm)" in *aarch64* | *arm64*) target=$(sluice_target "$root" Linux ARM64) ;; esac
"$root/dist/package.sh" archive "$target" "$rel/sluice" "$work/www" >/dev/null
"$root/dist/package.sh" manifest "$work/www" "$work/manifest.sha256" 2>/dev/null
mkdir -p "$work/home/archive"
cp "$work/www/"*.tar.gz "$work/home/archive/"
for i in $(seq 1 "$runs"); do
  t0=$(now_ns)
  SLUICE_HOME=$work/home SLUICE_MANIFEST=$work/manifest.sha256 SLUICE_DIST_URL=http://127.0.0.1:9/none \
    "$root/dist/install.sh" install >/dev/null 2>&1
  echo $(( ($(now_ns) - t0) / 1000 ))
done | median | awk '{printf "dist/install.sh install from a warm cache (multi-call): %.1f ms median\n", $1 / 1000}'
