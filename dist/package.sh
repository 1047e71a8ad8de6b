#!/usr/bin/env bash
# Release packaging.
#
#   dist/package.sh archive TARGET BINARY OUT_DIR
#       packs the multi-call `sluice` executable built for TARGET into
#       OUT_DIR/sluice-vVERSION-TARGET.tar.gz and prints its SHA-256 line.
#   dist/package.sh manifest ARCHIVE_DIR [MANIFEST]
#       writes the manifest of every archive of this version in ARCHIVE_DIR
#       (default: dist/manifests/vVERSION.sha256), in `sha256sum -c` format.
#
# One executable, not six: the six step names are links made at install
# time (see dist/README.md for the measurements behind that choice).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=dist/lib.sh
. "$root/dist/lib.sh"
version=$(sluice_version "$root")
usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

case "${1:-}" in
  archive)
    [ $# -eq 4 ] || usage
    target=$2 binary=$3 out=$4
    [ -x "$binary" ] || { echo "package.sh: $binary is not an executable; build it first" >&2; exit 2; }
    mkdir -p "$out"
    name=$(sluice_archive_name "$version" "$target")
    stage=$(mktemp -d)
    trap 'rm -rf "$stage"' EXIT
    dir="$stage/sluice-v$version-$target"
    mkdir "$dir"
    cp "$binary" "$dir/sluice"
    chmod 0755 "$dir/sluice"
    cp "$root/README.md" "$dir/"
    # Reproducible: fixed order, owner and times, so the same binary gives the
    # same archive and checksum.
    if tar --version 2>/dev/null | grep -q GNU; then
      tar --sort=name --owner=0 --group=0 --numeric-owner --mtime='1970-01-01 00:00:00Z' \
        -C "$stage" -cf - "sluice-v$version-$target" | gzip -9n >"$out/$name"
    else
      tar -C "$stage" -cf - "sluice-v$version-$target" | gzip -9n >"$out/$name"
    fi
    printf '%s  %s\n' "$(sha256 "$out/$name")" "$name"
    ;;
  manifest)
    if [ $# -lt 2 ] || [ $# -gt 3 ]; then usage; fi
    dir=$2 manifest=${3:-$root/dist/manifests/v$version.sha256}
    shopt -s nullglob
    archives=("$dir"/sluice-v"$version"-*.tar.gz)
    [ ${#archives[@]} -gt 0 ] || { echo "package.sh: no sluice-v$version-*.tar.gz in $dir" >&2; exit 2; }
    mkdir -p "$(dirname "$manifest")"
    tmp="$manifest.tmp.$$"
    for a in "${archives[@]}"; do
      printf '%s  %s\n' "$(sha256 "$a")" "$(basename "$a")"
    done | LC_ALL=C sort -k2 >"$tmp"
    mv "$tmp" "$manifest"
    echo "package.sh: wrote $manifest (${#archives[@]} archives)" >&2
    ;;
  *) usage ;;
esac
