#!/usr/bin/env bash
# resume.sh TEST_RESUME [TEST] - origin session resumption end to end (tests/fast/test_resume.c): starts a DNSSEC
# test bed of its own (test_resume changes its TLSA records) and two nginx origins on the bed's TLSA ports, one
# with session tickets, one with session IDs only, then runs the C test against them. Runs in a network
# namespace of its own (loopback only) when it can, so that no port can collide with other tests; everything
# it starts is stopped on exit.
#
# resume.sh --daemon DANEPROXY - the same bed and origins, then the daemon itself (one worker: each worker has a
# session cache of its own): the log line's "resumed" (false for a full handshake, true for the repeat, null
# where no TLS handshake with an origin completed) over a route, absolute-form https, a CONNECT passthrough and a
# refusal; daneproxy_upstream_handshakes_total{resumed} scraped from the metrics listener; and origin_sessions = 0
# (--origin-sessions 0 over the file's value) making every handshake a full one.
set -u
set -o pipefail
ARGS=("$@")
MODE=test
if [ "${1:-}" = --daemon ]; then
	MODE=daemon
	DANEPROXY=$2
	shift 2
else
	TEST_BIN=$1
	shift
fi
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
if [ "${RESUME_NETNS:-}" = "" ] && command -v unshare >/dev/null && unshare -n true 2>/dev/null; then
	RESUME_NETNS=1 exec unshare -n -- bash "$0" "${ARGS[@]}"
fi
if [ "${RESUME_NETNS:-}" = 1 ]; then
	ip link set lo up || { echo "resume.sh: cannot bring up loopback in the namespace" >&2; exit 1; }
fi
# shellcheck source=../lib/harness.bash
. "$TOP/tests/lib/harness.bash"
W=$(mktemp -d "${TMPDIR:-/tmp}/daneproxy-resume.XXXXXX")
chmod 755 "$W"
stop_bed() { "$TOP/tests/testbed/testbed.sh" stop "$W/bed" >/dev/null 2>&1; }
CLEANUP_HOOKS+=(stop_bed)
finish() {
	cleanup   # tests/lib/harness.bash: the hooks, then every process started with spawn
	rm -rf "$W"
}
trap finish EXIT
trap 'exit 130' INT TERM

if ! "$TOP/tests/testbed/testbed.sh" start "$W/bed" >"$W/bed.out" 2>&1; then
	cat "$W/bed.out" >&2
	echo "resume.sh: the test bed did not start" >&2
	exit 1
fi
# shellcheck disable=SC1091
. "$W/bed/testbed.env"
v6=""
grep -q '^00000000000000000000000000000001 ' /proc/net/if_inet6 2>/dev/null && v6=1
d=$W/nginx
mkdir -p "$d/tmp"
{
	[ "$(id -u)" = 0 ] && echo "user root;"
	cat <<NGX
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log info;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $d/tmp/body; proxy_temp_path $d/tmp/proxy; fastcgi_temp_path $d/tmp/fcgi;
  uwsgi_temp_path $d/tmp/uwsgi; scgi_temp_path $d/tmp/scgi;
  ssl_certificate $TESTBED_CHAIN; ssl_certificate_key $TESTBED_LEAF_KEY;
  ssl_protocols TLSv1.2 TLSv1.3;
  ssl_session_timeout 1h;
  server {
    listen 127.0.0.1:$TESTBED_TLS_PORT ssl; ${v6:+listen [::1]:$TESTBED_TLS_PORT ssl;}
    ssl_session_tickets on;
    ssl_session_cache shared:tickets:1m;
    location / { return 200 "ticket origin\n"; }
  }
  server {
    listen 127.0.0.1:$TESTBED_TLS_PORT2 ssl; ${v6:+listen [::1]:$TESTBED_TLS_PORT2 ssl;}
    ssl_session_tickets off;
    ssl_session_cache shared:ids:1m;
    location / { return 200 "session id origin\n"; }
  }
}
NGX
} >"$d/nginx.conf"
spawn nginx nginx -p "$d" -e "$d/error.log" -c "$d/nginx.conf" -g 'daemon off;'
if ! wait_for 10 port_listening "$TESTBED_TLS_PORT" || ! wait_for 10 port_listening "$TESTBED_TLS_PORT2"; then
	cat "$W/nginx.err" "$d/error.log" >&2
	echo "resume.sh: nginx did not start" >&2
	exit 1
fi
if [ "$MODE" = test ]; then
	"$TEST_BIN" "$W/bed/testbed.env" "$TESTBED_TLS_PORT" "$TESTBED_TLS_PORT2" "$HERE/bed-tlsa.sh" "$@"
	exit
fi

# ---------------------------------------------------------------- --daemon: the log line and the metric

GROUP=resume
RESULTS=$W/results
: >"$RESULTS"
PORT_BASE=34000   # clear of the bed's ports (20000-32767) and the other suites' when there is no namespace
WWW=www.dane.test

# start_daneproxy NAME SESSIONS-LINE [ARG...] - the daemon with one worker, an HTTP listener (DP_HTTP), a route to
# the ticket origin (DP_ROUTE) and metrics (DP_METRICS); waits for its ready lines. 1 when it did not start.
start_daneproxy() {
	local name=$1 sessions=$2
	shift 2
	free_port && DP_HTTP=$FREE && free_port && DP_ROUTE=$FREE && free_port && DP_METRICS=$FREE || return 1
	cat >"$W/$name.ini" <<INI
[proxy]
listen = 127.0.0.1:$DP_HTTP
workers = 1
ports = $TESTBED_TLS_PORT, $TESTBED_TLS_PORT2
log = $W/$name.log
$sessions
[connect]
state_dir = $W/state-$name
passthrough = $WWW
[resolver]
upstream = $TESTBED_RESOLVER
trust_anchor = $TESTBED_TRUST_ANCHOR
[policy]
ca_file = $TESTBED_CA_CERT
[metrics]
listen = 127.0.0.1:$DP_METRICS
[route www]
listen = 127.0.0.1:$DP_ROUTE
target = $WWW:$TESTBED_TLS_PORT
INI
	spawn "$name" "$DANEPROXY" -c "$W/$name.ini" "$@"
	DP_PID=$SPAWNED
	DP_LOG=$W/$name.log
	SEEN=0
	if ! wait_for 15 grep -q '^daneproxy: ready, metrics' "$W/$name.out"; then
		setup_fail "daneproxy $name did not become ready" "$W/$name.out" "$W/$name.err"
		return 1
	fi
}

log_lines() {
	local n
	n=$(grep -c '^{' "$DP_LOG" 2>/dev/null)
	echo "${n:-0}"
}
log_has() { [ "$(log_lines)" -ge "$1" ]; }
# next_line - LOGLINE = the next connection line after the ones seen so far (waits for it); "" when none came
next_line() {
	LOGLINE=""
	if wait_for 10 log_has $((SEEN + 1)); then
		SEEN=$((SEEN + 1))
		LOGLINE=$(grep '^{' "$DP_LOG" | sed -n "${SEEN}p")
	fi
}
# via_route - one request over the route (the ticket origin answers "ticket origin"); BODY
via_route() { BODY=$(curl -sS --max-time 10 -H "Host: $WWW" "http://127.0.0.1:$DP_ROUTE/" 2>&1); }
# absolute URL - one absolute-form request through the HTTP listener; CODE and BODY
absolute() {
	local out
	out=$(curl -sS --max-time 10 -w '\n%{http_code}' --request-target "$1" "http://127.0.0.1:$DP_HTTP/" 2>&1)
	CODE=${out##*$'\n'}
	BODY=${out%$'\n'*}
	BODY=${BODY%$'\n'}
}
# scrape - the exposition into $W/metrics.txt; metric SAMPLE - a sample's value ("" when absent)
scrape() { curl -sS --max-time 5 -o "$W/metrics.txt" "http://127.0.0.1:$DP_METRICS/metrics"; }
metric() { awk -v s="$1" '$1 == s { print $2 }' "$W/metrics.txt"; }
FULL='daneproxy_upstream_handshakes_total{resumed="false"}'
RESUMED='daneproxy_upstream_handshakes_total{resumed="true"}'
HISTO='daneproxy_upstream_handshake_duration_seconds_count'

# route_twice RESUMED1 RESUMED2 [LOG-EXPECTATIONS...] - two requests over the route: each answered by the ticket
# origin, their log lines say "resumed" as given (the second one also the expectations)
route_twice() {
	via_route
	check "first response" "$BODY" "ticket origin"
	next_line
	expect_log "$LOGLINE" listener=route auth=dane "resumed=$1"
	via_route
	check "second response" "$BODY" "ticket origin"
	next_line
	expect_log "$LOGLINE" listener=route auth=dane "resumed=$2" "${@:3}"
}

if start_daneproxy dp "origin_sessions = 16"; then
	case_begin route-full-then-resumed
	route_twice false true "tlsa~^[0-3] [01] [0-2] "
	case_end

	case_begin absolute-form-full-then-resumed
	absolute "https://$WWW:$TESTBED_TLS_PORT2/"
	check "first response" "$CODE $BODY" "200 session id origin"
	next_line
	expect_log "$LOGLINE" listener=http status=200 auth=dane resumed=false
	absolute "https://$WWW:$TESTBED_TLS_PORT2/"
	check "second response" "$CODE $BODY" "200 session id origin"
	next_line
	expect_log "$LOGLINE" listener=http status=200 auth=dane resumed=true
	case_end

	case_begin no-origin-handshake-is-null
	# CONNECT to a passthrough name: raw bytes, the client's own TLS with the origin
	out=$(curl -sS --max-time 10 -p -x "http://127.0.0.1:$DP_HTTP" --cacert "$TESTBED_CA_CERT" \
		"https://$WWW:$TESTBED_TLS_PORT/" 2>&1)
	check "tunnelled response" "$out" "ticket origin"
	next_line
	expect_log "$LOGLINE" tunnel=passthrough resumed=null
	# TLSA that does not match the origin: refused during the handshake
	absolute "https://mismatch.dane.test:$TESTBED_TLS_PORT/"
	check "refusal" "$CODE" 502
	next_line
	expect_log "$LOGLINE" error=tls_certificate_error resumed=null
	case_end

	case_begin metric-counts-them
	if scrape; then
		check "$FULL" "$(metric "$FULL")" 2
		check "$RESUMED" "$(metric "$RESUMED")" 2
		check "$HISTO (the same handshakes)" "$(metric "$HISTO")" 4
		grep -q '^# TYPE daneproxy_upstream_handshakes_total counter$' "$W/metrics.txt" || err "no TYPE line"
		grep -q '^# HELP daneproxy_upstream_handshakes_total ' "$W/metrics.txt" || err "no HELP line"
	else
		err "the metrics listener did not answer"
	fi
	case_end
	stop_pid "$DP_PID"
fi

# The command line wins over the file: --origin-sessions 0 turns resumption off.
if start_daneproxy dp0 "origin_sessions = 1024" --origin-sessions 0; then
	case_begin origin-sessions-0-always-full
	route_twice false false
	absolute "https://$WWW:$TESTBED_TLS_PORT2/"
	next_line
	expect_log "$LOGLINE" listener=http auth=dane resumed=false
	absolute "https://$WWW:$TESTBED_TLS_PORT2/"
	check "absolute-form response" "$CODE $BODY" "200 session id origin"
	next_line
	expect_log "$LOGLINE" listener=http auth=dane resumed=false
	if scrape; then
		check "$FULL" "$(metric "$FULL")" 4
		check "$RESUMED" "$(metric "$RESUMED")" 0
	else
		err "the metrics listener did not answer"
	fi
	case_end
	stop_pid "$DP_PID"
fi

case_begin origin-sessions-checked
printf '[proxy]\n; resumption\norigin_sessions = -1\n' >"$W/bad.ini"
out=$("$DANEPROXY" -t -c "$W/bad.ini" 2>&1)
check "status" "$?" 2
check_re "error" "$out" 'bad\.ini:3: origin_sessions: "-1" is not a whole number from 0 to 1000000'
out=$("$DANEPROXY" -t --origin-sessions 1000001 2>&1)
check_re "option error" "$out" '--origin-sessions: origin_sessions: "1000001" is not a whole number from 0'
case_end

passed=$(grep -c '^pass' "$RESULTS")
failed=$(grep -c '^fail' "$RESULTS")
echo "resume --daemon: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
