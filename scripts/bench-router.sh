#!/usr/bin/env bash
# Benchmark sluice-router on loopback: (a) wrk straight to an upstream,
# (b) through sluice-router at candidate weight 10, (c) through nginx with the
# same two upstreams weighted 90/10 and keep-alive. Prints req/s and p99 of
# each next to the targets. A measurement, not a test: it never fails on a
# missed target.
#
# Each target gets a saturating wrk run (throughput, and p99 under
# saturation) and a paced run at BENCH_LATENCY_RPS with sluice-loadgen (p99
# below saturation: what "added latency" means; wrk cannot pace). Targets are
# interleaved over BENCH_ROUNDS rounds and the median is reported, so
# background load on a shared machine skews them alike.
#
# Env: BENCH_DURATION (10s), BENCH_CONNECTIONS (64), BENCH_THREADS (2),
#      BENCH_LATENCY_RPS (2000), BENCH_ROUNDS (3), CARGO_TARGET_DIR.
set -euo pipefail

duration=${BENCH_DURATION:-10s}
conns=${BENCH_CONNECTIONS:-64}
threads=${BENCH_THREADS:-2}
lat_rps=${BENCH_LATENCY_RPS:-2000}
rounds=${BENCH_ROUNDS:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}

log() { echo "bench: $*" >&2; }

need_apt=()
command -v wrk >/dev/null || need_apt+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need_apt+=(nginx)
if [ ${#need_apt[@]} -gt 0 ]; then
    log "installing ${need_apt[*]}"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >&2
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

log "building release binaries"
(cd "$root" && CARGO_TARGET_DIR=$target cargo build --release -q -p sluice-router -p sluice-demo)
bin=$target/release

tmp=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

# wait_ready FILE: waits for a ready file, prints its "listen" address.
wait_ready() {
    for _ in $(seq 1 250); do
        if [ -s "$1" ]; then
            sed -E 's/.*"listen":"([^"]+)".*/\1/' "$1"
            return
        fi
        sleep 0.02
    done
    log "timed out waiting for $1"
    exit 1
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

"$bin/sluice-demo-app" --release v1 --ready-file "$tmp/v1.json" >/dev/null & pids+=($!)
"$bin/sluice-demo-app" --release v2 --ready-file "$tmp/v2.json" >/dev/null & pids+=($!)
v1=$(wait_ready "$tmp/v1.json")
v2=$(wait_ready "$tmp/v2.json")

"$bin/sluice-router" --stable "http://$v1" --candidate "http://$v2" --candidate-weight 10 \
    --ready-file "$tmp/router.json" >/dev/null & pids+=($!)
router=$(wait_ready "$tmp/router.json")

nginx_port=$(free_port)
mkdir -p "$tmp/nginx"
cat > "$tmp/nginx/nginx.conf" <<CONF
worker_processes auto;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $tmp/nginx/body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    upstream pools {
        server $v1 weight=90;
        server $v2 weight=10;
        keepalive 256;
    }
    server {
        listen 127.0.0.1:$nginx_port;
        location / {
            proxy_pass http://pools;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
CONF
"$nginx_bin" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" 2>>"$tmp/nginx/stderr" & pids+=($!)
nginx=127.0.0.1:$nginx_port
for _ in $(seq 1 250); do
    curl -fsS "http://$nginx/" >/dev/null 2>&1 && break
    sleep 0.02
done

# run_wrk NAME ADDR CONNS DURATION: prints "req_per_s p99_ms".
run_wrk() {
    local out
    out=$(wrk -t"$threads" -c"$3" -d"$4" --latency "http://$2/")
    echo "$out" > "$tmp/wrk-$1-$3.txt"
    local rps p99
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {
        v = $2
        if (v ~ /us$/) { sub(/us$/, "", v); v = v / 1000 }
        else if (v ~ /ms$/) { sub(/ms$/, "", v) }
        else if (v ~ /s$/) { sub(/s$/, "", v); v = v * 1000 }
        printf "%.3f", v }' <<<"$out")
    local errors
    errors=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out")
    [ -z "$errors" ] || log "$1: $errors"
    echo "$rps $p99"
}

# paced_p99 NAME ADDR: p99 in ms of a paced sluice-loadgen run.
paced_p99() {
    "$bin/sluice-loadgen" --url "http://$2/" --rps "$lat_rps" --duration "$duration" \
        --concurrency 64 --out "$tmp/loadgen-$1.json" >/dev/null
    sed -E 's/.*"p99_ms":([0-9.eE+-]+).*/\1/' "$tmp/loadgen-$1.json"
}

# median of the arguments
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

declare -A rps_runs p99_runs lat_runs addr_of=([direct]=$v1 [router]=$router [nginx]=$nginx)
for t in direct router nginx; do
    log "warming up $t"
    run_wrk "$t-warm" "${addr_of[$t]}" "$conns" 2s >/dev/null
done
# Interleave the targets round by round so background load hits all alike.
for round in $(seq 1 "$rounds"); do
    for t in direct router nginx; do
        log "round $round/$rounds: $t, $conns connections, $duration"
        read -r r p < <(run_wrk "$t" "${addr_of[$t]}" "$conns" "$duration")
        rps_runs[$t]+="$r "
        p99_runs[$t]+="$p "
        log "round $round/$rounds: $t, paced at $lat_rps req/s, $duration"
        lat_runs[$t]+="$(paced_p99 "$t" "${addr_of[$t]}") "
    done
done
declare -A rps p99 lat99
for t in direct router nginx; do
    # shellcheck disable=SC2086
    rps[$t]=$(median ${rps_runs[$t]})
    # shellcheck disable=SC2086
    p99[$t]=$(median ${p99_runs[$t]})
    # shellcheck disable=SC2086
    lat99[$t]=$(median ${lat_runs[$t]})
done

stats=$(curl -fsS "http://$(sed -E 's/.*"admin":"([^"]+)".*/\1/' "$tmp/router.json")/v1/stats")
share=$(jq -r '(.pools.candidate.requests) / (.pools.stable.requests + .pools.candidate.requests) * 100 | floor' <<<"$stats" 2>/dev/null || echo "?")

echo
echo "sluice-router benchmark: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), wrk -t$threads, $duration per run, median of $rounds rounds"
printf '%-8s %14s %18s %22s\n' target "req/s (c=$conns)" "p99 ms (c=$conns)" "p99 ms ($lat_rps req/s)"
for t in direct router nginx; do
    printf '%-8s %14.0f %18.3f %22.3f\n' "$t" "${rps[$t]}" "${p99[$t]}" "${lat99[$t]}"
done
awk -v r="${rps[router]}" -v n="${rps[nginx]}" -v c="$conns" -v lr="$lat_rps" \
    -v rp="${p99[router]}" -v dp="${p99[direct]}" -v np="${p99[nginx]}" \
    -v rl="${lat99[router]}" -v dl="${lat99[direct]}" -v nl="${lat99[nginx]}" 'BEGIN {
    ratio = r / n * 100
    printf "router/nginx throughput:   %5.0f%%      target >= 70%%   %s\n", ratio, (ratio >= 70 ? "met" : "MISSED")
    printf "added p99 at %s req/s:   %7.3f ms   target < 1 ms   %s   (nginx: %.3f ms)\n", lr, rl - dl, ((rl - dl) < 1 ? "met" : "MISSED"), nl - dl
    printf "added p99 saturated (c=%s): %7.3f ms   (nginx: %.3f ms)\n", c, rp - dp, np - dp
}'
echo "candidate share seen by the router: ${share}% (weight 10)"
