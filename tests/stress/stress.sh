#!/usr/bin/env bash
# stress.sh - the network fuzzer and the soak test of issue 9 ("Keep it hard"), through the real daemon on
# loopback: the DNSSEC test bed (tests/testbed), an nginx origin serving the bed's chain, for the fuzzer also a
# hostile Python TLS origin, and daneproxy started with the bed's resolver and trust anchor. The clients and
# every check are in stress.py; this script sets up, runs it, then stops the proxy with SIGTERM and checks its
# exit status and that its stderr holds no sanitizer report.
#
# usage: stress.sh DANEPROXY_BINARY TESTBED_ENV_FILE fuzz|soak [stress.py options...]
#   fuzz: origins on free ports in 6000-6999 (PKIX fallback to the bed's CA: those ports have no TLSA records).
#   soak: the origin on TESTBED_TLS_PORT2 (DANE-authenticated; TLSA mismatch and bogus names refused), proxies
#         on free ports in 7000-7999. Do not run it at the same time as another user of that port (ctest:
#         RESOURCE_LOCK dnsbed_tls_port2).
# Environment (the CI defaults are bounded; stress.cmake sets STRESS_SANITIZED=1 in sanitizer builds, which
# lowers the counts and lengthens the deadlines):
#   STRESS_SEED (default 1; "random" picks one and prints it), STRESS_FUZZ_CASES (default 3000, sanitized 2000),
#   STRESS_SOAK_ROUNDS (default 10, sanitized 8), STRESS_SOAK_OPS (ops per round, default 800, sanitized 800),
#   STRESS_WORKERS (concurrent clients, default 8), STRESS_KEEP=1 keeps the work directory (always kept on
#   failure). Options after the mode go to stress.py and win over the environment, e.g.
#     stress.sh build/daneproxy build/dnsbed/testbed.env fuzz --seed random --cases 20000
#     stress.sh build/daneproxy build/dnsbed/testbed.env fuzz --seed 1 --replay 3:17
#     stress.sh build/daneproxy build/dnsbed/testbed.env soak --rounds 40 --ops 1000
# Prints "ok"/"FAIL" per check, then "N passed, N failed"; exits 1 on any failure, 2 on bad usage.
set -u
# shellcheck source=../lib/harness.bash
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.bash"
set -o pipefail

if [ $# -lt 3 ] || { [ "$3" != fuzz ] && [ "$3" != soak ]; }; then
	echo "usage: $0 DANEPROXY_BINARY TESTBED_ENV_FILE fuzz|soak [stress.py options...]" >&2
	exit 2
fi
DANEPROXY=$(readlink -f "$1")
ENVFILE=$(readlink -f "$2")
MODE=$3
shift 3
EXTRA=("$@")

HERE=$(cd "$(dirname "$0")" && pwd)
ENGINE=$HERE/stress.py
if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=$(command -v python3 || true); fi
for v in http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy NO_PROXY no_proxy; do unset "$v"; done
export LC_ALL=C

[ -x "$DANEPROXY" ] || { echo "stress: $DANEPROXY is not executable" >&2; exit 2; }
[ -r "$ENVFILE" ] || { echo "stress: no test bed env file $ENVFILE (is the dnsbed fixture running?)" >&2; exit 2; }
for tool in nginx setsid; do
	command -v "$tool" >/dev/null || { echo "stress: $tool is required" >&2; exit 2; }
done
[ -n "$PY" ] || { echo "stress: python3 is required" >&2; exit 2; }
# shellcheck disable=SC1090
. "$ENVFILE"
for k in TESTBED_RESOLVER TESTBED_TRUST_ANCHOR TESTBED_DNS_PORT TESTBED_TLS_PORT2 TESTBED_CHAIN TESTBED_LEAF_KEY \
	TESTBED_CA_CERT; do
	[ -n "${!k:-}" ] || { echo "stress: $ENVFILE lacks $k" >&2; exit 2; }
done

SAN=${STRESS_SANITIZED:-0}
[ "$SAN" = ON ] && SAN=1
[ "$SAN" = 1 ] || SAN=0
W=$(mktemp -d "${TMPDIR:-/tmp}/daneproxy-stress-$MODE.XXXXXX")
RESULTS=$W/results
: >"$RESULTS"
# shellcheck disable=SC2034 # used by the harness's case_* functions
GROUP=$MODE CASE="" CASE_ERRS=() CASE_NOTES=()

# free_port - FREE = an unused port in this mode's range (fuzz 6000-6999, soak 7000-7999; tests/e2e and
# tests/connect use 10000-19999, the bed 20000+)
PORT_BASE=6000
[ "$MODE" = soak ] && PORT_BASE=7000
# shellcheck disable=SC2034 # read by tests/lib/harness.bash
PORT_SPAN=1000
# stop_pid (tests/lib/harness.bash) waits 15 s before SIGKILL: the proxy's shutdown_grace is 2 s, sanitizers are slow
# shellcheck disable=SC2034
STOP_WAIT=15
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# ---------------------------------------------------------------- origins

# nginx_start PORT - an HTTPS origin on 127.0.0.1:PORT and [::1]:PORT with the bed's chain: /hello answers
# "stress-origin", /echo returns the request body, /chunked/ serves files chunked, /204, files small.txt, big.bin.
# NGX_ACCESS is its access log (stress.py reads it: the origin must never see a smuggled or refused request).
nginx_start() {
	local port=$1 d=$W/nginx v6="" echo_port
	mkdir -p "$d/tmp" "$W/www"
	head -c 3000 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$W/www/small.txt"
	head -c 1048576 /dev/urandom >"$W/www/big.bin"
	free_port || return 1
	echo_port=$FREE
	grep -q '^00000000000000000000000000000001 ' /proc/net/if_inet6 2>/dev/null && v6="listen [::1]:$port ssl;"
	{
		[ "$(id -u)" = 0 ] && echo "user root;"
		cat <<EOF
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 4096; }
http {
  access_log $d/access.log;
  client_body_temp_path $d/tmp/body; proxy_temp_path $d/tmp/proxy; fastcgi_temp_path $d/tmp/fcgi;
  uwsgi_temp_path $d/tmp/uwsgi; scgi_temp_path $d/tmp/scgi;
  types { text/plain txt; application/octet-stream bin; }
  default_type application/octet-stream;
  ssl_protocols TLSv1.2 TLSv1.3;
  keepalive_requests 100000;
  server { listen 127.0.0.1:$echo_port; access_log off; return 404; }
  server {
    listen 127.0.0.1:$port ssl; $v6
    server_name _;
    ssl_certificate $TESTBED_CHAIN; ssl_certificate_key $TESTBED_LEAF_KEY;
    root $W/www;
    location = /hello { return 200 "stress-origin\n"; }
    location = /204 { return 204; }
    location = /echo {
      client_max_body_size 32m; client_body_in_single_buffer on; client_body_buffer_size 32m;
      proxy_pass http://127.0.0.1:$echo_port; proxy_intercept_errors on; error_page 404 = @echo;
    }
    location @echo { return 200 \$request_body; }
    location /chunked/ { alias $W/www/; sub_filter '@@never@@' 'x'; sub_filter_types *; sub_filter_once off; }
  }
}
EOF
	} >"$d/nginx.conf"
	spawn nginx nginx -p "$d" -e "$d/error.log" -c "$d/nginx.conf" -g 'daemon off;'
	NGX_ACCESS=$d/access.log
	local pid=$SPAWNED
	if ! wait_for 10 port_listening "$port" || ! alive "$pid"; then
		setup_fail "nginx did not start on port $port" "$W/nginx.err" "$d/error.log"
		return 1
	fi
	wait_for 5 port_listening "$echo_port" || true
}

helper_ready() { grep -q '^ready' "$W/$1.out" 2>/dev/null || ! alive "$2"; }
hostile_start() {
	spawn hostile "$PY" "$ENGINE" hostile "$1" "$TESTBED_CHAIN" "$TESTBED_LEAF_KEY"
	wait_for 10 helper_ready hostile "$SPAWNED"
	grep -q '^ready' "$W/hostile.out" || { setup_fail "the hostile origin did not start" "$W/hostile.err"; return 1; }
}

# ---------------------------------------------------------------- the proxy

PROXY_PID=""
NREADY=1
proxy_ready() { [ "$(grep -c '^daneproxy: ready' "$W/proxy.out" 2>/dev/null)" -ge "$NREADY" ]; }
proxy_ready_or_dead() { proxy_ready || ! alive "$PROXY_PID"; }
# proxy_start PORT ALLOWED-PORTS [ROUTE...] - daneproxy -c $W/proxy.ini on 127.0.0.1:PORT with the bed's resolver
# and trust anchor, the bed's CA as PKIX store, its own state directory, [proxy] ports = 443 and ALLOWED-PORTS (a
# client may only reach those, CONNECT and absolute-form alike), and port-mapped routes (--route LISTEN=HOST:PORT).
# Default timeouts: a leak must not be hidden by a short idle_timeout.
proxy_start() {
	local port=$1 allowed=$2 r
	local -a routes=()
	shift 2
	for r in "$@"; do routes+=(--route "$r"); done
	NREADY=$((1 + $#))
	cat >"$W/proxy.ini" <<EOF
[proxy]
shutdown_grace = 2s
ports = 443, $allowed

[policy]
ca_file = $TESTBED_CA_CERT

[connect]
state_dir = $W/state
EOF
	spawn proxy "$DANEPROXY" -c "$W/proxy.ini" --listen "127.0.0.1:$port" --resolver "$TESTBED_RESOLVER" \
		--trust-anchor "$TESTBED_TRUST_ANCHOR" --log "$W/proxy.log" "${routes[@]}"
	PROXY_PID=$SPAWNED
	wait_for 20 proxy_ready_or_dead
	if ! proxy_ready; then
		setup_fail "the proxy did not print its $NREADY ready line(s)" "$W/proxy.out" "$W/proxy.err" "$W/proxy.ini"
		return 1
	fi
}

SANITIZER_RE='runtime error|Sanitizer|leak of [0-9]+ byte'
sanitizer_report() { grep -Eq "$SANITIZER_RE" "$W/proxy.err" 2>/dev/null; }

# ---------------------------------------------------------------- main

now_ms
T0=$NOW
# Deadlines (s): T_OK for an answer that is due, T_MUT for one that may never come; descriptors must be back
# within SETTLE, and a round is judged early once nothing changed for STABLE (a case replayed alone: STABLE_MIN);
# MINIMIZE bounds the shrinking of a leaking case. Sanitizer builds run several times slower.
if [ "$SAN" = 1 ]; then
	T_OK=15 T_MUT=0.8 SETTLE=30 STABLE=15 STABLE_MIN=3 MINIMIZE=40
	CASES=${STRESS_FUZZ_CASES:-2000} ROUNDS=${STRESS_SOAK_ROUNDS:-8} OPS=${STRESS_SOAK_OPS:-800}
else
	T_OK=5 T_MUT=0.3 SETTLE=10 STABLE=5 STABLE_MIN=1.5 MINIMIZE=20
	CASES=${STRESS_FUZZ_CASES:-3000} ROUNDS=${STRESS_SOAK_ROUNDS:-10} OPS=${STRESS_SOAK_OPS:-800}
fi
SEED=${STRESS_SEED:-1}
WORKERS=${STRESS_WORKERS:-8}

setup_ok=0
free_port && PP=$FREE
free_port && DEAD=$FREE            # nothing listens here (connection refused), yet the allow-list has it
FORBIDDEN=25                       # not in the allow-list
free_port && R1=$FREE
free_port && R2=$FREE
if [ "$MODE" = fuzz ]; then
	free_port && OP=$FREE
	free_port && HP=$FREE
	free_port && R3=$FREE
	ROUTES="{\"ok\": $R1, \"hostile\": $R2, \"refused\": $R3}"
	if nginx_start "$OP" && hostile_start "$HP" && proxy_start "$PP" "$OP, $HP, $DEAD" \
		"127.0.0.1:$R1=www.dane.test:$OP" "127.0.0.1:$R2=www.dane.test:$HP" "127.0.0.1:$R3=nx.dane.test:$OP"; then
		setup_ok=1
	fi
	ORIGIN_PORTS="$OP, $HP, $DEAD, 22, $FORBIDDEN"
else
	OP=$TESTBED_TLS_PORT2
	HP=0
	ROUTES="{\"ok\": $R1, \"mismatch\": $R2}"
	if nginx_start "$OP" && proxy_start "$PP" "$OP, $DEAD" "127.0.0.1:$R1=www.dane.test:$OP" \
		"127.0.0.1:$R2=mismatch.dane.test:$OP"; then
		setup_ok=1
	fi
	ORIGIN_PORTS="$OP, $DEAD, $FORBIDDEN"
fi
echo "stress $MODE: work directory $W; proxy 127.0.0.1:${PP:-?} (pid ${PROXY_PID:-none}); origin port $OP;" \
	"$([ "$SAN" = 1 ] && echo "sanitizer build" || echo "release build")"

rc=1
# daneproxy ca export: the soak verifies the leaves minted for CONNECT against it
if [ "$setup_ok" = 1 ] && ! { "$DANEPROXY" ca export --state-dir "$W/state" >"$W/ca.pem" 2>"$W/ca-export.err" &&
	[ -s "$W/ca.pem" ]; }; then
	setup_fail "daneproxy ca export failed" "$W/ca-export.err"
	setup_ok=0
fi
if [ "$setup_ok" = 1 ]; then
	cat >"$W/env.json" <<EOF
{"pid": $PROXY_PID, "proxy_port": $PP, "dns_port": $TESTBED_DNS_PORT, "origin_ports": [$ORIGIN_PORTS],
 "routes": $ROUTES,
 "log": "$W/proxy.log", "access_log": "$NGX_ACCESS", "workdir": "$W", "local_ca": "$W/ca.pem",
 "sanitized": $([ "$SAN" = 1 ] && echo true || echo false),
 "fuzz_ok": "www.dane.test:$OP", "fuzz_hostile": "www.dane.test:$HP", "ok_port": $OP, "dead_port": $DEAD,
 "soak_ok": "www.dane.test:$OP", "soak_mismatch": "mismatch.dane.test:$OP",
 "soak_bogus": "www.expired.dane.test:$OP", "forbidden_port": $FORBIDDEN,
 "t_ok": $T_OK, "t_mut": $T_MUT, "settle_deadline": $SETTLE, "settle_stable": $STABLE,
 "settle_stable_min": $STABLE_MIN, "minimize_budget": $MINIMIZE,
 "replay_cmd": "bash $HERE/stress.sh $DANEPROXY $ENVFILE"}
EOF
	if [ "$MODE" = fuzz ]; then
		args=(fuzz "$W/env.json" --seed "$SEED" --cases "$CASES" --workers "$WORKERS")
	else
		args=(soak "$W/env.json" --seed "$SEED" --rounds "$ROUNDS" --ops "$OPS" --workers "$WORKERS")
	fi
	# The engine runs in its own process group (spawn), followed by tail: a signal to this script interrupts the
	# wait at once, and cleanup stops the engine with everything else.
	: >"$W/engine.out"
	spawn engine "$PY" "$ENGINE" "${args[@]}" "${EXTRA[@]}"
	ENGINE_PID=$SPAWNED
	tail -n +1 -f --pid="$ENGINE_PID" "$W/engine.out" &
	TAIL_PID=$!
	wait "$ENGINE_PID"
	rc=$?
	wait "$TAIL_PID"
	[ -s "$W/engine.err" ] && cat "$W/engine.err"

	case_begin "$MODE"
	[ "$rc" = 0 ] || err "stress.py $MODE failed (exit $rc): see the FAIL lines above"
	case_end

	# SIGTERM with nothing open: the proxy exits 0 at once; sanitizer builds report leaks and errors here
	case_begin shutdown-clean
	if alive "$PROXY_PID"; then
		stop_pid "$PROXY_PID"
		check "exit status after SIGTERM" "$STOP_RC" 0
		grep -q 'signal 15: .* [1-9][0-9]* open' "$W/proxy.err" &&
			err "connections were still open at SIGTERM, with no client left: $(grep -m1 'signal 15' "$W/proxy.err")"
	else
		err "the proxy is not running: $(tail -c 400 "$W/proxy.err" | tr '\n' ' ')"
	fi
	case_end
	case_begin no-sanitizer-report
	if sanitizer_report; then
		err "the proxy's stderr has a sanitizer report:"
		note "$(grep -E -m1 -A12 "$SANITIZER_RE" "$W/proxy.err" | cut -c1-200)"
	fi
	case_end
	# the daemon's own check at exit: every handle closed (stranded streams show up here in release builds too)
	case_begin loop-closed-clean
	grep -q 'loop not closed' "$W/proxy.err" && err "the proxy says: $(grep -m1 'loop not closed' "$W/proxy.err")"
	case_end
fi
cleanup

now_ms
npass=$(grep -c '^pass ' "$RESULTS")
nfail=$(grep -c '^fail ' "$RESULTS")
echo "stress $MODE: $(((NOW - T0) / 1000)).$(((NOW - T0) % 1000 / 100)) s; work directory $W"
echo "$npass passed, $nfail failed"
if [ "$nfail" -eq 0 ] && [ "$npass" -gt 0 ] && [ "${STRESS_KEEP:-0}" != 1 ]; then
	rm -rf "$W"
else
	rm -f "$W/www/big.bin"
fi
[ "$nfail" -eq 0 ] && [ "$npass" -gt 0 ]
