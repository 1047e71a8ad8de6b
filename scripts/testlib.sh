# shellcheck shell=bash
# Helpers for the shell tests (sourced): counted checks, a closing
# "N passed, N failed" line, and servers on 127.0.0.1 that stop with the test.

passed=0
failed=0
_pids=()

ok() { passed=$((passed + 1)); printf 'ok   %s\n' "$*"; }
not_ok() { failed=$((failed + 1)); printf 'FAIL %s\n' "$*"; }

# check DESCRIPTION COMMAND...: passes when the command succeeds.
check() {
  local what=$1; shift
  if "$@"; then ok "$what"; else not_ok "$what"; fi
}

# contains FILE TEXT: the file contains the text.
contains() { grep -qF -- "$2" "$1"; }

# Prints the closing line and exits non-zero if anything failed.
finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}

_stop_all() {
  local pid
  for pid in "${_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap _stop_all EXIT

# background COMMAND...: runs it until the test ends.
background() {
  "$@" &
  _pids+=($!)
}

# serve_dir DIR READY_FILE: serves DIR over HTTP on 127.0.0.1 (a free port)
# and writes http://127.0.0.1:PORT to READY_FILE once it listens.
serve_dir() {
  background python3 -c '
import functools, http.server, os, sys
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write("http://127.0.0.1:%d" % server.server_address[1])
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
server.serve_forever()
' "$1" "$2" 2>/dev/null
  local _
  for _ in $(seq 1 100); do
    [ -s "$2" ] && return 0
    sleep 0.05
  done
  echo "the HTTP server for $1 did not start" >&2
  return 1
}

# wait_ready FILE: waits for a ready file written by sluice-router or the demo app.
wait_ready() {
  local _
  for _ in $(seq 1 200); do
    [ -s "$1" ] && return 0
    sleep 0.05
  done
  echo "$1 never appeared" >&2
  return 1
}

# json_field FILE KEY...: one field of a JSON file.
json_field() {
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); [d:=d[k] for k in sys.argv[2:]]; print(d)' "$@"
}
