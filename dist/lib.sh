# shellcheck shell=bash
# Helpers shared by dist/install.sh and dist/package.sh (sourced, not run).

# The version of this checkout: [workspace.package] version in Cargo.toml.
sluice_version() {
  awk '/^\[workspace\.package\]/{p=1; next} /^\[/{p=0} p && /^version *=/{gsub(/.*= *"|".*/, ""); print; exit}' "$1/Cargo.toml"
}

# SHA-256 of a file or stdin, hex only (sha256sum on Linux, shasum on macOS).
sha256() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$@" | awk '{print $1}'
  else
    shasum -a 256 "$@" | awk '{print $1}'
  fi
}

# The Rust target for a runner's OS and architecture, or nothing.
sluice_target() {
  awk -F'\t' -v os="$2" -v arch="$3" '!/^#/ && $1 == os && $2 == arch {print $3; exit}' "$1/dist/targets.tsv"
}

# The archive's file name for a version and target.
sluice_archive_name() {
  printf 'sluice-v%s-%s.tar.gz' "$1" "$2"
}
