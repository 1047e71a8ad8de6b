#!/usr/bin/env bash
# Installs the sluice step binaries for this runner and puts them on PATH.
#
#   dist/install.sh plan      what would be installed, and the cache key
#   dist/install.sh install   install (from the cache when it is warm)
#
# Picks the release archive from $RUNNER_OS / $RUNNER_ARCH (dist/targets.tsv),
# verifies its SHA-256 against the manifest committed in this checkout for
# this version (dist/manifests/vVERSION.sha256), and refuses to install
# anything when it does not match. When the manifest lists an archive for the
# runner, that archive is the only way in: a failed download is an error
# that says why (never a silent source build). With no archive for the
# runner (no manifest for this version, or an unlisted OS/architecture) it
# builds from this checkout with `cargo build --locked` instead.
#
# The version is the checkout's (Cargo.toml): an action ref is one release.
#
# Environment (all optional):
#   RUNNER_OS, RUNNER_ARCH   as the runner sets them (default: from uname)
#   SLUICE_HOME              where the archive and binaries are kept; the
#                            action caches this folder (default:
#                            $RUNNER_TOOL_CACHE/sluice/VERSION/TARGET, else
#                            ~/.cache/sluice/VERSION/TARGET)
#   SLUICE_DIST_URL          where archives are downloaded from (default: the
#                            GitHub release vVERSION of $SLUICE_REPOSITORY on
#                            $GITHUB_SERVER_URL); set it for a mirror, e.g.
#                            on GitHub Enterprise Server
#   SLUICE_REPOSITORY        owner/repo of the action (default: sluice-dev/sluice)
#   SLUICE_MANIFEST          the manifest to verify against (tests only)
#   SLUICE_FROM_SOURCE=1     build from source even when an archive fits
#
# Outputs (to $GITHUB_OUTPUT when set, and stdout): version, target, method
# (archive or source), key, path, and after install bin-dir. The bin folder
# is appended to $GITHUB_PATH when set.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=dist/lib.sh
. "$root/dist/lib.sh"

steps=(gate shift-traffic verify-health promote rollback dora-report)

say() { echo "sluice install: $*" >&2; }
fail() {
  if [ "${GITHUB_ACTIONS:-}" = true ]; then
    echo "::error title=sluice install::$*"
  fi
  echo "sluice install: error: $*" >&2
  exit 1
}
warn() {
  if [ "${GITHUB_ACTIONS:-}" = true ]; then
    echo "::warning title=sluice install::$*"
  fi
  echo "sluice install: warning: $*" >&2
}
output() {
  printf '%s=%s\n' "$1" "$2"
  if [ -n "${GITHUB_OUTPUT:-}" ]; then
    printf '%s=%s\n' "$1" "$2" >>"$GITHUB_OUTPUT"
  fi
}

version=$(sluice_version "$root")
[ -n "$version" ] || fail "cannot read the version from $root/Cargo.toml"

runner_os=${RUNNER_OS:-}
runner_arch=${RUNNER_ARCH:-}
if [ -z "$runner_os" ]; then
  case "$(uname -s)" in
    Linux) runner_os=Linux ;;
    Darwin) runner_os=macOS ;;
    MINGW* | MSYS* | CYGWIN*) runner_os=Windows ;;
    *) runner_os=$(uname -s) ;;
  esac
fi
if [ -z "$runner_arch" ]; then
  case "$(uname -m)" in
    x86_64 | amd64) runner_arch=X64 ;;
    aarch64 | arm64) runner_arch=ARM64 ;;
    *) runner_arch=$(uname -m) ;;
  esac
fi
[ "$runner_os" != Windows ] || fail "Windows runners are not supported yet; run sluice on a Linux or macOS runner"

target=$(sluice_target "$root" "$runner_os" "$runner_arch")
manifest=${SLUICE_MANIFEST:-$root/dist/manifests/v$version.sha256}
archive_name=$(sluice_archive_name "$version" "${target:-none}")
expected=
if [ -n "$target" ] && [ -f "$manifest" ]; then
  expected=$(awk -v f="$archive_name" '$2 == f || $2 == "*" f {print $1; exit}' "$manifest")
fi

if [ -n "$expected" ] && [ -z "${SLUICE_FROM_SOURCE:-}" ]; then
  method=archive
else
  method=source
fi
host=${target:-$(printf '%s-%s' "$runner_os" "$runner_arch" | tr '[:upper:]' '[:lower:]')}
home=${SLUICE_HOME:-${RUNNER_TOOL_CACHE:-$HOME/.cache}/sluice/$version/$host}

# The source build is keyed by everything cargo builds from.
source_hash() {
  (cd "$root" && find Cargo.toml Cargo.lock crates -type f \( -name '*.rs' -o -name Cargo.toml -o -name Cargo.lock \) \
    | LC_ALL=C sort | while read -r f; do printf '%s  %s\n' "$(sha256 "$f")" "$f"; done) | sha256
}

if [ "$method" = archive ]; then
  key="sluice-$version-$target-${expected:0:16}"
else
  key="sluice-src-$version-$host-$(source_hash | cut -c1-16)"
fi

plan() {
  output version "$version"
  output target "$host"
  output method "$method"
  output key "$key"
  output path "$home"
}

# Links the six step names to the one executable in $1.
link_steps() {
  local bin=$1 step
  for step in "${steps[@]}"; do
    ln -sf sluice "$bin/$step"
  done
}

install_archive() {
  local cached="$home/archive/$archive_name" url actual stage
  mkdir -p "$home/archive"
  if [ -f "$cached" ]; then
    say "using the cached $archive_name"
  else
    url="${SLUICE_DIST_URL:-${GITHUB_SERVER_URL:-https://github.com}/${SLUICE_REPOSITORY:-sluice-dev/sluice}/releases/download/v$version}/$archive_name"
    say "downloading $url"
    local code=0
    curl -fsSL --retry 3 --retry-delay 2 --connect-timeout 10 --max-time 300 -o "$cached.part" "$url" 2>"$home/curl.err" || code=$?
    if [ "$code" != 0 ]; then
      rm -f "$cached.part"
      fail "could not download $url ($(tr '\n' ' ' <"$home/curl.err" | sed 's/ *$//')); the manifest v$version.sha256 lists $archive_name for this runner, so nothing was installed. If the action's repository is private, or the runner cannot reach $url (GitHub Enterprise Server, a proxy), put the archive where it can and set SLUICE_DIST_URL to its folder; SLUICE_FROM_SOURCE=1 builds from source instead (about 230 crates)"
    fi
    mv "$cached.part" "$cached"
  fi
  actual=$(sha256 "$cached")
  if [ "$actual" != "$expected" ]; then
    rm -f "$cached"
    fail "checksum mismatch for $archive_name: the manifest $(basename "$manifest") says $expected, the file has $actual; refusing to install it (nothing was installed; the file was deleted)"
  fi
  say "checksum verified: $archive_name $actual"
  # Unpack beside the final folder and swap it in only when complete.
  stage=$(mktemp -d "$home/.unpack.XXXXXX")
  tar -xzf "$cached" -C "$stage"
  local exe="$stage/sluice-v$version-$target/sluice"
  [ -x "$exe" ] || { rm -rf "$stage"; fail "$archive_name has no sluice-v$version-$target/sluice"; }
  mkdir -p "$stage/bin"
  mv "$exe" "$stage/bin/sluice"
  link_steps "$stage/bin"
  rm -rf "${home:?}/bin"
  mv "$stage/bin" "$home/bin"
  rm -rf "$stage"
}

install_source() {
  local hash stamp="$home/bin/.source-hash"
  hash=$(source_hash)
  if [ -x "$home/bin/sluice" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$hash" ]; then
    say "using the cached source build of $version ($host)"
    link_steps "$home/bin"
    return
  fi
  command -v cargo >/dev/null 2>&1 ||
    fail "no release archive of sluice $version for $runner_os/$runner_arch and no cargo to build one; install Rust (https://rustup.rs) in an earlier step"
  say "no release archive of sluice $version for $runner_os/$runner_arch: building from source (cargo build --locked)"
  local target_dir=${CARGO_TARGET_DIR:-${RUNNER_TEMP:-${TMPDIR:-/tmp}}/sluice-target}
  CARGO_TARGET_DIR="$target_dir" cargo build --release --locked --quiet \
    --manifest-path "$root/Cargo.toml" -p sluice-cli --bin sluice >&2
  mkdir -p "$home/.build"
  local stage
  stage=$(mktemp -d "$home/.build/bin.XXXXXX")
  cp "$target_dir/release/sluice" "$stage/sluice"
  link_steps "$stage"
  printf '%s\n' "$hash" >"$stage/.source-hash"
  rm -rf "${home:?}/bin"
  mv "$stage" "$home/bin"
}

case "${1:-}" in
  plan) plan ;;
  install)
    mkdir -p "$home"
    if [ "$method" = archive ]; then install_archive; else install_source; fi
    "$home/bin/sluice" --version >/dev/null || fail "the installed $home/bin/sluice does not run on this machine"
    if [ -n "${GITHUB_PATH:-}" ]; then
      echo "$home/bin" >>"$GITHUB_PATH"
    fi
    output method "$method"
    output bin-dir "$home/bin"
    say "installed sluice $version ($method) in $home/bin"
    ;;
  *)
    sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
