#!/usr/bin/env bash
# resume.sh TEST_RESUME [TEST] - origin session resumption end to end (tests/fast/test_resume.c): starts a DNSSEC
# test bed of its own (test_resume changes its TLSA records) and two nginx origins on the bed's TLSA ports, one
# with session tickets, one with session IDs only, then runs the C test against them. Runs in a network
# namespace of its own (loopback only) when it can, so that no port can collide with other tests; everything
# it starts is stopped on exit.
set -u
set -o pipefail
TEST_BIN=$1
shift
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
if [ "${RESUME_NETNS:-}" = "" ] && command -v unshare >/dev/null && unshare -n true 2>/dev/null; then
	RESUME_NETNS=1 exec unshare -n -- bash "$0" "$TEST_BIN" "$@"
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
"$TEST_BIN" "$W/bed/testbed.env" "$TESTBED_TLS_PORT" "$TESTBED_TLS_PORT2" "$HERE/bed-tlsa.sh" "$@"
