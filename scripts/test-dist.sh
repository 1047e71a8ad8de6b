#!/usr/bin/env bash
# Tests dist/install.sh with a locally built release archive and manifest,
# served over HTTP on 127.0.0.1: a good checksum installs; a bad one refuses
# with a clear message and installs nothing; a warm cache installs without a
# download; no archive for the runner falls back to `cargo build --locked`.
#
#   scripts/test-dist.sh      (ends with "N passed, N failed")
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/testlib.sh
. "$root/scripts/testlib.sh"
# shellcheck source=dist/lib.sh
. "$root/dist/lib.sh"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
unset GITHUB_ACTIONS GITHUB_OUTPUT GITHUB_PATH SLUICE_HOME SLUICE_DIST_URL SLUICE_MANIFEST SLUICE_FROM_SOURCE

(cd "$root" && cargo build --release --locked --quiet -p sluice-cli --bin sluice) || { echo "build failed" >&2; exit 1; }
version=$(sluice_version "$root")
target=x86_64-unknown-linux-gnu
case "$(uname -m)" in aarch64 | arm64) target=aarch64-unknown-linux-gnu ;; esac
arch=$( [ "$target" = x86_64-unknown-linux-gnu ] && echo X64 || echo ARM64 )
name=$(sluice_archive_name "$version" "$target")

work=$(mktemp -d)
trap '_stop_all; rm -rf "$work"' EXIT
mkdir -p "$work/www"
"$root/dist/package.sh" archive "$target" "$CARGO_TARGET_DIR/release/sluice" "$work/www" >/dev/null
"$root/dist/package.sh" manifest "$work/www" "$work/good.sha256" 2>/dev/null
serve_dir "$work/www" "$work/url"
url=$(cat "$work/url")

# run NAME [VAR=VALUE...]: dist/install.sh install, as a runner would run it,
# with its own output files; keeps stdout, stderr and the exit code.
run() {
  local label=$1; shift
  mkdir -p "$work/$label"
  : >"$work/$label/github_output"; : >"$work/$label/github_path"
  env RUNNER_OS=Linux RUNNER_ARCH="$arch" GITHUB_OUTPUT="$work/$label/github_output" \
    GITHUB_PATH="$work/$label/github_path" SLUICE_DIST_URL="$url" "$@" \
    "$root/dist/install.sh" install >"$work/$label/stdout" 2>"$work/$label/stderr"
  echo $? >"$work/$label/code"
}
code() { cat "$work/$1/code"; }

echo "# a good checksum installs"
home=$work/home-good
run good SLUICE_HOME="$home" SLUICE_MANIFEST="$work/good.sha256"
check "exit 0" [ "$(code good)" = 0 ]
check "downloaded over HTTP and verified" contains "$work/good/stderr" "checksum verified: $name"
check "method=archive output" contains "$work/good/github_output" "method=archive"
check "bin folder on GITHUB_PATH" contains "$work/good/github_path" "$home/bin"
for step in gate shift-traffic verify-health promote rollback dora-report; do
  check "$step runs through its link" bash -c "'$home/bin/$step' --version | grep -qx '$step $version'"
done
check "the installed executable is the packed one" cmp -s "$home/bin/sluice" "$CARGO_TARGET_DIR/release/sluice"

echo "# a warm cache installs without downloading"
run warm SLUICE_HOME="$home" SLUICE_MANIFEST="$work/good.sha256" SLUICE_DIST_URL=http://127.0.0.1:9/unreachable
check "exit 0" [ "$(code warm)" = 0 ]
check "used the cached archive" contains "$work/warm/stderr" "using the cached $name"
check "verified it again" contains "$work/warm/stderr" "checksum verified"

echo "# a bad checksum refuses and installs nothing"
sed 's/^\(.\)/0\1/; s/^\(.\{64\}\)./\1/' "$work/good.sha256" >"$work/bad.sha256"
[ "$(head -c 64 "$work/bad.sha256")" != "$(head -c 64 "$work/good.sha256")" ] || sed -i 's/^./f/' "$work/bad.sha256"
home=$work/home-bad
run bad SLUICE_HOME="$home" SLUICE_MANIFEST="$work/bad.sha256"
check "exit 1" [ "$(code bad)" = 1 ]
check "says checksum mismatch and refuses" contains "$work/bad/stderr" "checksum mismatch for $name"
check "says nothing was installed" contains "$work/bad/stderr" "refusing to install it (nothing was installed"
check "no bin folder" [ ! -e "$home/bin" ]
check "the bad download was deleted" [ ! -e "$home/archive/$name" ]
check "nothing on GITHUB_PATH" [ ! -s "$work/bad/github_path" ]
check "no bin-dir output" bash -c "! grep -q bin-dir '$work/bad/github_output'"

echo "# a tampered cached archive is refused too"
home=$work/home-tampered
mkdir -p "$home/archive"
printf 'not sluice' | gzip >"$home/archive/$name"
run tampered SLUICE_HOME="$home" SLUICE_MANIFEST="$work/good.sha256"
check "exit 1" [ "$(code tampered)" = 1 ]
check "checksum mismatch" contains "$work/tampered/stderr" "checksum mismatch"
check "no bin folder" [ ! -e "$home/bin" ]

echo "# a runner with no archive builds from source"
home=$work/home-source
env RUNNER_OS=Linux RUNNER_ARCH=S390X SLUICE_HOME="$home" "$root/dist/install.sh" plan >"$work/plan-s390x" 2>&1
check "plan: method=source for an unlisted architecture" contains "$work/plan-s390x" "method=source"
run source SLUICE_HOME="$home" SLUICE_MANIFEST="$work/none.sha256"
check "exit 0" [ "$(code source)" = 0 ]
check "built with cargo" contains "$work/source/stderr" "building from source (cargo build --locked)"
check "method=source output" contains "$work/source/github_output" "method=source"
check "gate runs" bash -c "'$home/bin/gate' --version | grep -qx 'gate $version'"
run source-warm SLUICE_HOME="$home" SLUICE_MANIFEST="$work/none.sha256"
check "a second run reuses the cached build" contains "$work/source-warm/stderr" "using the cached source build"

echo "# a listed archive that cannot be downloaded is an error, not a silent source build"
run missing SLUICE_HOME="$work/home-missing" SLUICE_MANIFEST="$work/good.sha256" SLUICE_DIST_URL="$url/nothing-here"
check "exit 1" [ "$(code missing)" = 1 ]
check "says what failed and what to do" contains "$work/missing/stderr" "could not download $url/nothing-here/$name"
check "names SLUICE_DIST_URL" contains "$work/missing/stderr" "set SLUICE_DIST_URL"
check "built nothing" [ ! -e "$work/home-missing/bin/sluice" ]

echo "# Windows is refused clearly"
env RUNNER_OS=Windows RUNNER_ARCH=X64 SLUICE_HOME="$work/home-win" "$root/dist/install.sh" install >"$work/win" 2>&1
check "exit 1 with a message" contains "$work/win" "Windows runners are not supported yet"

finish
