#!/usr/bin/env bash
# connect.sh - end-to-end tests of CONNECT with TLS termination (issue 5), on loopback only: the DNSSEC test bed
# (tests/testbed), an nginx origin on TESTBED_TLS_PORT serving the bed's chain, daneproxy with its local CA, and
# real clients: curl, openssl s_client, headless Chromium with an NSS database, and misbehaving Python clients
# (connect_helper.py). Every case checks what the client sees and, where there is one, the proxy's JSON log line.
#
# usage: connect.sh DANEPROXY_BINARY TESTBED_ENV_FILE [curl|chromium|bad|load]...   (default: all, in that order)
#   The nginx origin owns TESTBED_TLS_PORT: do not run at the same time as another user of that port
#   (ctest: RESOURCE_LOCK, see connect.cmake). Proxies listen on free ports in 16000-17999.
# Environment: CONNECT_KEEP=1 keeps the work directory (always kept when a case fails);
#   CONNECT_CHROMIUM=PATH runs that browser binary instead of chromium;
#   CONNECT_LOAD_N (default 200) and CONNECT_LOAD_PAR (default 50) size the load measurement.
# Prints "ok"/"FAIL"/"skip" per case, the load figures, then "N passed, N failed" (and "N skipped" before it);
# exits 1 on any failure, 2 on bad usage or missing tools.
set -u
# shellcheck source=../lib/harness.bash
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.bash"
set -o pipefail

if [ $# -lt 2 ]; then
	echo "usage: $0 DANEPROXY_BINARY TESTBED_ENV_FILE [curl|chromium|bad|load]..." >&2
	exit 2
fi
DANEPROXY=$(readlink -f "$1")
ENVFILE=$2
shift 2
GROUPS_WANTED=("$@")
[ ${#GROUPS_WANTED[@]} -eq 0 ] && GROUPS_WANTED=(curl chromium bad load)

HERE=$(cd "$(dirname "$0")" && pwd)
HELPER=$HERE/connect_helper.py
if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=$(command -v python3 || true); fi

for v in http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy NO_PROXY no_proxy CURL_HOME SSLKEYLOGFILE; do
	unset "$v"
done
export LC_ALL=C

[ -x "$DANEPROXY" ] || { echo "connect: $DANEPROXY is not executable" >&2; exit 2; }
[ -r "$ENVFILE" ] || { echo "connect: no test bed env file $ENVFILE (is the dnsbed fixture running?)" >&2; exit 2; }
for tool in nginx curl openssl sha256sum setsid timeout stat date awk; do
	command -v "$tool" >/dev/null || { echo "connect: $tool is required" >&2; exit 2; }
done
[ -n "$PY" ] || { echo "connect: python3 is required" >&2; exit 2; }
# shellcheck disable=SC1090
. "$ENVFILE"
for k in TESTBED_RESOLVER TESTBED_TRUST_ANCHOR TESTBED_TLS_PORT TESTBED_CHAIN TESTBED_LEAF_KEY TESTBED_CA_CERT \
	TESTBED_LEAF_SPKI_SHA256 TESTBED_CA_CERT_SHA256; do
	[ -n "${!k:-}" ] || { echo "connect: $ENVFILE lacks $k" >&2; exit 2; }
done

T=$TESTBED_TLS_PORT
RUN=$(mktemp -d "${TMPDIR:-/tmp}/daneproxy-connect.XXXXXX")
W=$RUN
RESULTS=$RUN/results
: >"$RESULTS"
HAVE_V6=0
grep -q '^00000000000000000000000000000001 ' /proc/net/if_inet6 2>/dev/null && HAVE_V6=1

# ---------------------------------------------------------------- time, polling, ports


# Ports 16000-17999 (harness.bash free_port); every process spawned is stopped on the way out.
PORT_BASE=16000
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# ---------------------------------------------------------------- cases and checks

CASE=""
GROUP=""
CASE_ERRS=()
CASE_NOTES=()
case_skip() { # case_skip NAME WHY
	echo "skip $GROUP/$1: SKIP: $2"
	echo "skip $GROUP/$1" >>"$RESULTS"
}

# first_pem FILE OUT - the first PEM certificate of FILE
first_pem() { awk '/-----BEGIN CERTIFICATE-----/{p=1} p{print} /-----END CERTIFICATE-----/{if(p) exit}' "$1" >"$2"; }

# ---------------------------------------------------------------- origin, proxies, requests

MARK=daneproxy-connect-marker-$RANDOM$RANDOM
XMARK=origin-header-$RANDOM$RANDOM
ORIGIN_LOG=$W/nginx/access.log
NGINX_PID=""
nginx_start() {
	local d=$W/nginx v6=""
	mkdir -p "$d/tmp" "$W/www"
	printf '<!DOCTYPE html>\n<html><head><title>connect test</title></head><body><p id="m">%s</p></body></html>\n' \
		"$MARK" >"$W/www/marker.html"
	head -c 1048576 /dev/urandom >"$W/www/big.bin"
	[ "$HAVE_V6" = 1 ] && v6="listen [::1]:$T ssl http2;"
	{
		[ "$(id -u)" = 0 ] && echo "user root;"
		cat <<EOF
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log info;
events { worker_connections 1024; }
http {
  access_log $d/access.log;
  client_body_temp_path $d/tmp/body; proxy_temp_path $d/tmp/proxy; fastcgi_temp_path $d/tmp/fcgi;
  uwsgi_temp_path $d/tmp/uwsgi; scgi_temp_path $d/tmp/scgi;
  types { text/html html; application/octet-stream bin; }
  default_type application/octet-stream;
  ssl_protocols TLSv1.2 TLSv1.3;
  keepalive_requests 10000;
  server {
    listen 127.0.0.1:$T ssl http2; $v6
    server_name _;
    ssl_certificate $TESTBED_CHAIN; ssl_certificate_key $TESTBED_LEAF_KEY;
    root $W/www;
    add_header X-Origin-Marker $XMARK always;
  }
}
EOF
	} >"$d/nginx.conf"
	spawn nginx nginx -p "$d" -e "$d/error.log" -c "$d/nginx.conf" -g 'daemon off;'
	NGINX_PID=$SPAWNED
	if ! wait_for 10 port_listening "$T" || ! alive "$NGINX_PID"; then
		setup_fail "nginx did not start on port $T" "$W/nginx.err" "$d/error.log"
		return 1
	fi
}

STATE=$W/state
CA_SUBJECT=""
declare -A PPORT=() PPID_OF=()
# proxy_start NAME [INI-LINES...] - daneproxy -c $W/NAME.ini (with [connect] ports/state_dir and the given extra
# lines appended) on a free port, bed resolver and anchor, log $W/NAME.log; waits for "daneproxy: ready".
proxy_start() {
	local name=$1 line
	shift
	free_port || return 1
	PPORT[$name]=$FREE
	{
		printf '[proxy]\nshutdown_grace = 2s\nworkers = 1\n'   # the mint-cache cases count leaves per process
		printf '[connect]\nports = 443, %s\nstate_dir = %s\n' "$T" "$STATE"
		for line in "$@"; do printf '%s\n' "$line"; done
	} >"$W/$name.ini"
	spawn "$name" "$DANEPROXY" -c "$W/$name.ini" --listen "127.0.0.1:$FREE" --resolver "$TESTBED_RESOLVER" \
		--trust-anchor "$TESTBED_TRUST_ANCHOR" --log "$W/$name.log"
	PPID_OF[$name]=$SPAWNED
	wait_for 15 proxy_ready_or_dead "$name"
	if ! grep -q '^daneproxy: ready' "$W/$name.out" 2>/dev/null; then
		setup_fail "proxy $name did not print its ready line" "$W/$name.out" "$W/$name.err" "$W/$name.ini"
		return 1
	fi
}
proxy_ready_or_dead() { grep -q '^daneproxy: ready' "$W/$1.out" 2>/dev/null || ! alive "${PPID_OF[$1]}"; }

# preq NAME PROXY URL [CURL-ARG...] - one curl request through the proxy (CONNECT); P_RC (curl exit), P_CONNECT
# (status of the CONNECT answer), P_CODE (origin status, 000 if none), P_LPORT (client port), P_HTTPV;
# $W/req-NAME.{h,b,err,certs} (headers of the CONNECT answer and of the response, body, curl errors, -w %{certs})
preq() {
	local name=$1 proxy=$2 url=$3 out
	shift 3
	curl -sS --max-time 20 -x "http://127.0.0.1:${PPORT[$proxy]}" -o "$W/req-$name.b" -D "$W/req-$name.h" \
		-w '%{http_connect} %{http_code} %{local_port} %{http_version}\n%{certs}' "$@" "$url" \
		>"$W/req-$name.w" 2>"$W/req-$name.err"
	P_RC=$?
	read -r P_CONNECT P_CODE P_LPORT P_HTTPV <"$W/req-$name.w"
	tail -n +2 "$W/req-$name.w" >"$W/req-$name.certs"
	P_CONNECT=${P_CONNECT:-000}
	P_CODE=${P_CODE:-000}
	P_LPORT=${P_LPORT:-0}
}
curl_note() { note "curl exit $P_RC: $(head -c 300 "$W/req-$1.err" 2>/dev/null | tr '\n' ' ') | $(head -c 400 "$W/req-$1.h" 2>/dev/null | tr '\r\n' '  ')"; }
cert_field() { # cert_field NAME FIELD - a field of the first certificate of curl's %{certs}
	grep -m1 "^$2:" "$W/req-$1.certs" | sed -e "s/^$2://"
}

# t_ok PROXY NAME HOST [LOG-EXPECTATIONS...] - a DANE-valid origin through a terminated tunnel: 200 to CONNECT,
# the marker page intact with the origin's header, a minted leaf for HOST, HTTP/2 on both legs (the origin speaks
# h2, curl offers it: ALPN is mirrored), and the log line.
t_ok() {
	local proxy=$1 name=$2 host=$3 san
	shift 3
	case_begin "$name"
	preq "$name" "$proxy" "https://$host:$T/marker.html?c=$name" --cacert "$W/ca.pem" --http2
	check "curl exit" "$P_RC" 0
	check "CONNECT status" "$P_CONNECT" 200
	check "status" "$P_CODE" 200
	check "http version (ALPN h2 mirrored)" "$P_HTTPV" 2
	grep -qF "$MARK" "$W/req-$name.b" || err "the marker is not in the body: $(head -c 200 "$W/req-$name.b" | tr '\n' ' ')"
	check "X-Origin-Marker" "$(header "$W/req-$name.h" X-Origin-Marker)" "$XMARK"
	san=$(cert_field "$name" "X509v3 Subject Alternative Name")
	check "minted leaf SAN" "$san" "DNS:$host"
	check "minted leaf issuer (the local CA)" "$(cert_field "$name" Issuer)" "$CA_SUBJECT"
	get_logline "$W/$proxy.log" "$P_LPORT"
	expect_log "$LOGLINE" tunnel=terminated status=200 dnssec=secure auth=dane error=null "target=$host:$T" alpn=h2 "$@"
	[ ${#CASE_ERRS[@]} -eq 0 ] || curl_note "$name"
	case_end
}

# t_refuse PROXY NAME HOST STATUS ERROR DETAILS-REGEX [LOG-EXPECTATIONS...] - a refused CONNECT: STATUS (never 200)
# with Proxy-Status error=ERROR and details, curl fails, the origin never sees the request, and the log line.
t_refuse() {
	local proxy=$1 name=$2 host=$3 want=$4 e=$5 dre=$6 ps
	shift 6
	case_begin "$name"
	preq "$name" "$proxy" "https://$host:$T/marker.html?c=$name" --cacert "$W/ca.pem"
	check "CONNECT status" "$P_CONNECT" "$want"
	[ "$P_CONNECT" == 200 ] && err "the proxy answered 200 to CONNECT"
	[ "$P_CODE" == 200 ] && err "curl got a 200 response"
	[ "$P_RC" -ne 0 ] || err "curl succeeded"
	grep -qF "$MARK" "$W/req-$name.b" 2>/dev/null && err "the origin's page came through"
	ps=$(header "$W/req-$name.h" Proxy-Status)
	check_re "Proxy-Status" "$ps" "^daneproxy; error=$e(; (rcode=\"[A-Z]+\"|info-code=[0-9]+))*; details=\"[^\"]+\"$"
	[[ $ps =~ details=\"([^\"]*)\" ]] && check_re "Proxy-Status details" "${BASH_REMATCH[1]}" "$dre"
	if grep -q "c=${name}[ &]" "$ORIGIN_LOG" 2>/dev/null; then
		err "the origin received the request although the proxy refused it"
	fi
	get_logline "$W/$proxy.log" "$P_LPORT"
	expect_log "$LOGLINE" "status=$want" "error=$e" "target=$host:$T" bytes_up=0 auth=null "$@"
	[ ${#CASE_ERRS[@]} -eq 0 ] || curl_note "$name"
	case_end
}

# sclient NAME PROXY SNI-ARGS... - openssl s_client through the proxy to www.dane.test:T, trusting the local CA;
# output in $W/sc-NAME.out, the first certificate in $W/sc-NAME.pem
sclient() {
	local name=$1 proxy=$2
	shift 2
	echo | timeout 20 openssl s_client -proxy "127.0.0.1:${PPORT[$proxy]}" -connect "www.dane.test:$T" -showcerts \
		-CAfile "$W/ca.pem" "$@" >"$W/sc-$name.out" 2>"$W/sc-$name.err"
	first_pem "$W/sc-$name.out" "$W/sc-$name.pem"
}
count_matching() { grep -c -- "$2" "$1" 2>/dev/null || true; }
more_lines_than() { [ "$(count_matching "$1" "$2")" -gt "$3" ]; }
case_alive() { # case_alive PROXY... - the proxies are still running
	local p
	case_begin "proxies-alive"
	for p in "$@"; do
		alive "${PPID_OF[$p]}" || err "proxy $p is not running: $(tail -n 3 "$W/$p.err" | tr '\n' ' ')"
	done
	case_end
}

# ================================================================= group: curl
# The local CA and `daneproxy ca`, DANE-valid origins, refusals, the minted leaf, SNI, passthrough.
group_curl() {
	local SPKI=$TESTBED_LEAF_SPKI_SHA256 CA=$TESTBED_CA_CERT_SHA256 out fp s1 s2 n v nb na now

	# --- the local CA, created by the first proxy's start
	case_begin ca-created-on-start
	grep -q 'newly issued' "$W/A.out" "$W/A.err" 2>/dev/null || err "proxy A did not say it issued a new CA: $(cat "$W/A.out")"
	for f in ca.pem ca.key leaf.key; do [ -s "$STATE/$f" ] || err "$STATE/$f is missing"; done
	check "ca.key mode" "$(stat -c %a "$STATE/ca.key" 2>/dev/null)" 600
	check "leaf.key mode" "$(stat -c %a "$STATE/leaf.key" 2>/dev/null)" 600
	case_end

	case_begin ca-export
	"$DANEPROXY" ca export --state-dir "$STATE" --out "$W/ca-out.pem" 2>"$W/ca-export.err"
	check "ca export --out exit" "$?" 0
	cmp -s "$W/ca.pem" "$W/ca-out.pem" || err "ca export --out differs from ca export on stdout"
	out=$(openssl x509 -in "$W/ca.pem" -noout -text 2>&1)
	check "openssl x509 parses the export" "$?" 0
	check_re "CA flag" "$out" "CA:TRUE"
	check_re "key" "$out" "NIST CURVE: P-256"
	check_re "key usage" "$out" "Certificate Sign"
	[ "$(openssl x509 -in "$W/ca.pem" -noout -pubkey 2>/dev/null)" == \
		"$(openssl pkey -in "$STATE/ca.key" -pubout 2>/dev/null)" ] || err "the exported certificate is not ca.key's"
	grep -q 'PRIVATE KEY' "$W/ca.pem" && err "the export contains a private key"
	case_end

	case_begin ca-show
	out=$("$DANEPROXY" ca show --state-dir "$STATE" 2>&1)
	check "exit" "$?" 0
	fp=$(openssl x509 -in "$W/ca.pem" -noout -fingerprint -sha256 | sed -e 's/^.*=//')
	check "path" "$(sed -n 's/^path: *//p' <<<"$out")" "$STATE/ca.pem"
	check_re "subject" "$(sed -n 's/^subject: *//p' <<<"$out")" "daneproxy"
	check_re "validity" "$(sed -n 's/^valid[a-z]*: *//p' <<<"$out")" "^[0-9]{4}-[0-9]{2}-[0-9]{2}.*[0-9]{4}-[0-9]{2}-[0-9]{2}"
	check "sha256" "$(sed -n 's/^sha256: *//p' <<<"$out")" "$fp"
	[ ${#CASE_ERRS[@]} -eq 0 ] || note "ca show: $out"
	case_end

	case_begin ca-keys-never-logged
	for f in ca.key leaf.key; do
		v=$(sed -n 2p "$STATE/$f" | cut -c1-40)
		[ -n "$v" ] && grep -rqF "$v" "$W"/*.out "$W"/*.err "$W"/*.log 2>/dev/null && err "$f appears in a proxy output or log"
	done
	case_end

	# --- DANE-valid origins through a terminated tunnel
	t_ok A ok-www www.dane.test "tlsa=3 1 1 $SPKI" depth=0 close=done
	t_ok A ok-ta ta.dane.test "tlsa=2 0 1 $CA" depth=1
	t_ok A ok-tafull tafull.dane.test "tlsa~^2 0 0 30" depth=1
	t_ok A ok-cname-secure cname-secure.dane.test "tlsa=3 1 1 $SPKI" depth=0

	case_begin body-1mb-intact
	preq big A "https://www.dane.test:$T/big.bin?c=big" --cacert "$W/ca.pem"
	check "curl exit" "$P_RC" 0
	check "status" "$P_CODE" 200
	check "sha256 of the 1 MB body" "$(sha "$W/req-big.b")" "$(sha "$W/www/big.bin")"
	check "Content-Length" "$(header "$W/req-big.h" Content-Length)" 1048576
	check "X-Origin-Marker" "$(header "$W/req-big.h" X-Origin-Marker)" "$XMARK"
	get_logline "$W/A.log" "$P_LPORT"
	expect_log "$LOGLINE" tunnel=terminated status=200 auth=dane "bytes_down~^1[0-9]{6}$"
	case_end

	case_begin keepalive-two-requests-one-tunnel
	out=$(curl -sS --max-time 20 -x "http://127.0.0.1:${PPORT[A]}" --cacert "$W/ca.pem" -o /dev/null -o "$W/ka2.b" \
		-w '%{http_code} %{num_connects} %{local_port}\n' "https://www.dane.test:$T/big.bin?c=ka1" \
		"https://www.dane.test:$T/marker.html?c=ka2" 2>"$W/ka.err")
	check "curl exit" "$?" 0
	check_re "two 200s, the second on the same connection" "${out//$'\n'/ }" "^200 1 ([0-9]+) 200 0 ([0-9]+)$"
	grep -qF "$MARK" "$W/ka2.b" || err "the second response lacks the marker"
	case_end

	# --- refusals: never a 200 to CONNECT
	t_refuse A refuse-mismatch mismatch.dane.test 502 tls_certificate_error "TLSA mismatch" dnssec=secure tunnel=terminated
	t_refuse A refuse-bogus www.expired.dane.test 502 dns_error "bogus" dnssec=bogus peer=null
	t_refuse A refuse-bogus-tlsa www.altered.dane.test 502 dns_error "bogus" dnssec=bogus
	t_refuse A refuse-nxdomain nx.dane.test 502 dns_error "." peer=null
	t_refuse O refuse-policy-dane-only notlsa.dane.test 502 tls_certificate_error "dane-only" policy=dane-only \
		"dnssec~secure"

	case_begin refuse-port-403
	preq port A "https://www.dane.test:8443/?c=port" --cacert "$W/ca.pem"
	check "CONNECT status" "$P_CONNECT" 403
	[ "$P_RC" -ne 0 ] || err "curl succeeded"
	get_logline "$W/A.log" "$P_LPORT"
	expect_log "$LOGLINE" status=403 "target~^(www.dane.test:8443|null)$"
	case_end

	# --- the minted leaf, seen by openssl
	case_begin minted-leaf
	sclient leaf A -servername www.dane.test -verify_hostname www.dane.test -verify_return_error
	grep -q 'Verify return code: 0 (ok)' "$W/sc-leaf.out" || err "s_client did not verify the chain to the exported CA: $(grep 'Verify return' "$W/sc-leaf.out")"
	if [ -s "$W/sc-leaf.pem" ]; then
		out=$(openssl verify -CAfile "$W/ca.pem" -purpose sslserver "$W/sc-leaf.pem" 2>&1)
		check "openssl verify -CAfile ca.pem" "$out" "$W/sc-leaf.pem: OK"
		out=$(openssl x509 -in "$W/sc-leaf.pem" -noout -text 2>&1)
		check_re "SAN" "$(grep -A1 'Subject Alternative Name' <<<"$out" | tail -n 1 | tr -d ' ')" "^DNS:www.dane.test$"
		check_re "key" "$out" "Public Key Algorithm: id-ecPublicKey"
		check_re "curve" "$out" "NIST CURVE: P-256"
		check_re "EKU" "$out" "TLS Web Server Authentication"
		[[ $out =~ CA:TRUE ]] && err "the minted leaf is a CA"
		check "issuer" "$(openssl x509 -in "$W/sc-leaf.pem" -noout -issuer)" \
			"$(openssl x509 -in "$W/ca.pem" -noout -subject | sed -e 's/^subject/issuer/')"
		nb=$(date -d "$(openssl x509 -in "$W/sc-leaf.pem" -noout -startdate | cut -d= -f2)" +%s)
		na=$(date -d "$(openssl x509 -in "$W/sc-leaf.pem" -noout -enddate | cut -d= -f2)" +%s)
		now=$(date +%s)
		[ "$nb" -le "$now" ] || err "notBefore is in the future"
		[ "$na" -gt "$now" ] || err "the minted leaf is expired"
		[ $((na - nb)) -le $((31 * 86400)) ] || err "validity $(((na - nb) / 86400)) days is not short (> 31 days)"
		note "minted leaf validity: $(((na - nb) / 3600)) h"
		echo "       minted leaf: $(openssl x509 -in "$W/sc-leaf.pem" -noout -subject), valid $(((na - nb) / 3600)) h" \
			"($(openssl x509 -in "$W/sc-leaf.pem" -noout -startdate | cut -d= -f2) .. $(openssl x509 -in "$W/sc-leaf.pem" -noout -enddate | cut -d= -f2))"
	else
		err "s_client saw no certificate: $(tail -n 3 "$W/sc-leaf.err" | tr '\n' ' ')"
	fi
	case_end

	case_begin minted-leaf-without-sni
	sclient nosni A -noservername -verify_hostname www.dane.test -verify_return_error
	grep -q 'Verify return code: 0 (ok)' "$W/sc-nosni.out" || err "no verified leaf for the CONNECT host without SNI: $(grep 'Verify return' "$W/sc-nosni.out") $(tail -n 2 "$W/sc-nosni.err" | tr '\n' ' ')"
	case_end

	case_begin mint-cache-per-name
	preq ok-www-again A "https://www.dane.test:$T/marker.html?c=ok-www-again" --cacert "$W/ca.pem"
	s1=$(cert_field ok-www "Serial Number")
	s2=$(cert_field ok-www-again "Serial Number")
	[ -n "$s1" ] || err "no serial seen"
	check "serial of the second leaf for www.dane.test (cached)" "$s2" "$s1"
	[ "$(cert_field ok-ta "Serial Number")" != "$s1" ] || err "ta.dane.test got the leaf of www.dane.test"
	case_end

	case_begin sni-mismatch-refused
	n=$(count_matching "$W/A.log" '"close": "sni_mismatch"')
	sclient sni A -servername other.dane.test
	grep -q 'BEGIN CERTIFICATE' "$W/sc-sni.out" && err "the proxy presented a certificate for SNI other.dane.test"
	grep -q 'Cipher is (NONE)' "$W/sc-sni.out" || err "s_client completed a handshake: $(grep -E 'Cipher is|Verify return' "$W/sc-sni.out" | tr '\n' ' ')"
	if wait_for 5 more_lines_than "$W/A.log" '"close": "sni_mismatch"' "$n"; then
		LOGLINE=$(grep -F '"close": "sni_mismatch"' "$W/A.log" | tail -n 1)
		expect_log "$LOGLINE" "target=www.dane.test:$T" tunnel=terminated "close_detail~other.dane.test"
	else
		err "no log line with close sni_mismatch"
		note "last log line: $(tail -n 1 "$W/A.log")"
	fi
	case_end

	# --- passthrough: a plain tunnel; the client sees the origin's own certificate
	case_begin passthrough-www
	preq pt P "https://www.dane.test:$T/marker.html?c=pt" --cacert "$TESTBED_CA_CERT"
	check "curl exit" "$P_RC" 0
	check "CONNECT status" "$P_CONNECT" 200
	check "status" "$P_CODE" 200
	grep -qF "$MARK" "$W/req-pt.b" || err "the marker is not in the body"
	check "X-Origin-Marker" "$(header "$W/req-pt.h" X-Origin-Marker)" "$XMARK"
	check_re "leaf issuer (the origin's CA)" "$(cert_field pt Issuer)" "daneproxy testbed CA"
	get_logline "$W/P.log" "$P_LPORT"
	expect_log "$LOGLINE" tunnel=passthrough status=200 "target=www.dane.test:$T" error=null
	[ ${#CASE_ERRS[@]} -eq 0 ] || curl_note pt
	case_end

	case_begin passthrough-not-terminated
	preq ptca P "https://www.dane.test:$T/marker.html?c=ptca" --cacert "$W/ca.pem"
	check "CONNECT status" "$P_CONNECT" 200
	check "curl exit (60: the origin's certificate is not from the local CA)" "$P_RC" 60
	case_end

	t_ok P passthrough-other-names-terminated ta.dane.test "tlsa=2 0 1 $CA" depth=1
	t_refuse P passthrough-bogus-refused www.expired.dane.test 502 dns_error "bogus" tunnel=passthrough

	# --- ALPN mirroring: a client that does not speak what the origin chose gets a second origin connection
	case_begin alpn-http11-client-second-origin
	preq alpn11 A "https://www.dane.test:$T/marker.html?c=alpn11" --cacert "$W/ca.pem" --http1.1
	check "curl exit" "$P_RC" 0
	check "status" "$P_CODE" 200
	check "http version" "$P_HTTPV" 1.1
	grep -qF "$MARK" "$W/req-alpn11.b" || err "the marker is not in the body"
	grep -q '"GET /marker.html?c=alpn11 HTTP/1.1"' "$ORIGIN_LOG" || err "the origin did not see an HTTP/1.1 request"
	get_logline "$W/A.log" "$P_LPORT"
	expect_log "$LOGLINE" tunnel=terminated status=200 auth=dane alpn=http/1.1 close=done
	case_end
	case_begin alpn-h2-both-legs
	grep -q '"GET /marker.html?c=ok-www HTTP/2.0"' "$ORIGIN_LOG" || err "the origin did not see ok-www over HTTP/2"
	case_end

	# --- terminate = dane: only names whose secure TLSA makes DANE apply are terminated; others are tunnelled
	case_begin terminate-dane-no-tlsa-tunnelled
	preq tdn D "https://notlsa.dane.test:$T/marker.html?c=tdn" --cacert "$TESTBED_CA_CERT"
	check "curl exit (the origin's own certificate, trusted by the bed's CA)" "$P_RC" 0
	check "status" "$P_CODE" 200
	check "leaf issuer (the origin's CA, not the local CA)" "$(cert_field tdn Issuer)" \
		"$(openssl x509 -in "$TESTBED_CA_CERT" -noout -subject 2>/dev/null | sed -e 's/^subject= *//')"
	get_logline "$W/D.log" "$P_LPORT"
	expect_log "$LOGLINE" tunnel=passthrough "tunnel_reason~terminate = dane" auth=passthrough leaf=null \
		"dnssec=secure absence" status=200
	case_end
	t_ok D terminate-dane-dane-name-terminated www.dane.test "tlsa=3 1 1 $SPKI" "tunnel_reason~authenticates"
	t_refuse D terminate-dane-bogus-refused www.expired.dane.test 502 dns_error "bogus"

	case_alive A O P D
}

# ================================================================= group: chromium
CHROMIUM=${CONNECT_CHROMIUM:-chromium}
have_chromium() { command -v "$CHROMIUM" >/dev/null && command -v certutil >/dev/null; }
# chromium_run NAME HOME URL - headless Chromium through proxy C, bounded by timeout 60; DOM in $W/chr-NAME.out
chromium_run() {
	local name=$1 home=$2 url=$3
	mkdir -p "$home"
	spawn "chr-$name" env HOME="$home" XDG_CONFIG_HOME="$home/.config" XDG_CACHE_HOME="$home/.cache" \
		timeout 60 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
		--disable-background-networking --disable-component-update --disable-sync --disable-dev-shm-usage \
		--user-data-dir="$W/profile-$name" --proxy-server="127.0.0.1:${PPORT[C]}" --dump-dom "$url"
	local pid=$SPAWNED
	wait "$pid"
	CHR_RC=$?
	stop_pid "$pid" KILL    # whatever Chromium left in its process group
}
group_chromium() {
	# Chromium and certutil come from .ci/install-deps (packages chromium, libnss3-tools): a test installs nothing.
	if ! have_chromium; then
		local why="$CHROMIUM or certutil is not installed (sh .ci/install-deps test installs them)"
		case_skip chromium-dane-valid "$why"
		case_skip chromium-mismatch "$why"
		case_skip chromium-untrusted-ca "$why"
		return
	fi
	echo "       $("$CHROMIUM" --version 2>/dev/null | grep -i chromium | head -n 1)"
	local H=$W/chr-home
	mkdir -p "$H/.pki/nssdb"
	case_begin chromium-nssdb
	certutil -d "sql:$H/.pki/nssdb" -N --empty-password >"$W/certutil.out" 2>&1 || err "certutil -N failed: $(cat "$W/certutil.out")"
	certutil -d "sql:$H/.pki/nssdb" -A -n daneproxy -t "C,," -i "$W/ca.pem" >>"$W/certutil.out" 2>&1 ||
		err "certutil -A failed: $(cat "$W/certutil.out")"
	certutil -d "sql:$H/.pki/nssdb" -L 2>/dev/null | grep -q '^daneproxy ' || err "the CA is not in the NSS database"
	case_end

	case_begin chromium-dane-valid
	chromium_run valid "$H" "https://www.dane.test:$T/marker.html?c=chromium-valid"
	[ "$CHR_RC" == 124 ] && err "Chromium ran into the 60 s timeout"
	grep -qF "$MARK" "$W/chr-valid.out" || err "the marker is not in Chromium's DOM: $(head -c 300 "$W/chr-valid.out" | tr '\n' ' ') / $(grep -v dbus "$W/chr-valid.err" | tail -n 2 | tr '\n' ' ')"
	LOGLINE=$(grep -F "\"target\": \"www.dane.test:$T\"" "$W/C.log" 2>/dev/null | grep -F '"status": 200' | tail -n 1)
	expect_log "$LOGLINE" tunnel=terminated status=200 auth=dane "tlsa=3 1 1 $TESTBED_LEAF_SPKI_SHA256"
	grep -q 'c=chromium-valid HTTP/2.0' "$ORIGIN_LOG" || err "the origin did not see Chromium's request over HTTP/2"
	check_re "ALPN on both legs" "$LOGLINE" '"alpn": "h2"'
	case_end

	case_begin chromium-mismatch
	chromium_run mismatch "$H" "https://mismatch.dane.test:$T/marker.html?c=chromium-mismatch"
	[ "$CHR_RC" == 124 ] && err "Chromium ran into the 60 s timeout"
	grep -qF "$MARK" "$W/chr-mismatch.out" && err "the marker of a TLSA-mismatch origin is in Chromium's DOM"
	grep -F "\"target\": \"mismatch.dane.test:$T\"" "$W/C.log" | grep -qF '"status": 200' && err "the proxy answered 200 to Chromium's CONNECT to mismatch.dane.test"
	LOGLINE=$(grep -F "\"target\": \"mismatch.dane.test:$T\"" "$W/C.log" 2>/dev/null | tail -n 1)
	expect_log "$LOGLINE" status=502 error=tls_certificate_error "details~TLSA mismatch"
	grep -q 'c=chromium-mismatch' "$ORIGIN_LOG" && err "the origin saw Chromium's request"
	note "chromium: $(grep -o 'net::ERR_[A-Z_]*' "$W/chr-mismatch.err" | head -n 1)"
	[ ${#CASE_ERRS[@]} -eq 0 ] && echo "       chromium on mismatch.dane.test: $(grep -o 'net::ERR_[A-Z_]*' "$W/chr-mismatch.err" | head -n 1)"
	case_end

	# Control: without the local CA in its NSS database Chromium refuses the minted leaf.
	case_begin chromium-untrusted-ca
	local n
	n=$(grep -cF "\"target\": \"www.dane.test:$T\"" "$W/C.log")
	chromium_run untrusted "$W/chr-home-empty" "https://www.dane.test:$T/marker.html?c=chromium-untrusted"
	[ "$CHR_RC" == 124 ] && err "Chromium ran into the 60 s timeout"
	grep -qF "$MARK" "$W/chr-untrusted.out" && err "Chromium loaded the page without trusting the local CA"
	[ "$(grep -cF "\"target\": \"www.dane.test:$T\"" "$W/C.log")" -gt "$n" ] || err "Chromium did not CONNECT through the proxy"
	grep -q 'c=chromium-untrusted' "$ORIGIN_LOG" && err "the origin saw the request"
	case_end
	case_alive C
}

# ================================================================= group: bad
# Misbehaving clients on proxy S (idle_timeout 6s, header_timeout 2s, handshake_timeout 2s) cost only their own
# connection: a normal client is served while they hang, and the proxy survives.
BADN=0
# bad_start MODE HOLD - a misbehaving client in the background; BAD = its name (output $W/BAD.out)
bad_start() {
	BADN=$((BADN + 1))
	BAD=bad$BADN-$1
	spawn "$BAD" "$PY" "$HELPER" bad "$1" "${PPORT[S]}" "www.dane.test:$T" "$2"
}
bad_stalled() { grep -q '^stalled' "$W/$1.out" 2>/dev/null; }
bad_done() { grep -q '^result' "$W/$1.out" 2>/dev/null; }
# bad_result NAME WAIT - RES_STATUS RES_CLOSED RES_AFTER RES_LPORT of a finished client (waits up to WAIT s)
bad_result() {
	local line
	wait_for "$2" bad_done "$1" || true
	line=$(grep '^result' "$W/$1.out" 2>/dev/null)
	RES_LPORT=$(sed -n 's/^local //p' "$W/$1.out" 2>/dev/null)
	RES_STATUS=$(sed -n 's/.*status=\([^ ]*\).*/\1/p' <<<"$line")
	RES_CLOSED=$(sed -n 's/.*closed=\([^ ]*\).*/\1/p' <<<"$line")
	RES_AFTER=$(sed -n 's/.*after_ms=\([^ ]*\).*/\1/p' <<<"$line")
	[ -n "$line" ] || { RES_STATUS=""; RES_CLOSED=""; RES_AFTER=""; note "$1: $(cat "$W/$1.out" "$W/$1.err" 2>/dev/null | tr '\n' ' ')"; }
}
# normal_ok NAME - a normal client through S succeeds; prints nothing, adds errors
normal_ok() {
	preq "$1" S "https://www.dane.test:$T/marker.html?c=$1" --cacert "$W/ca.pem"
	if [ "$P_RC" != 0 ] || [ "$P_CODE" != 200 ] || ! grep -qF "$MARK" "$W/req-$1.b"; then
		err "a normal client failed while bad clients were connected (curl $P_RC, CONNECT $P_CONNECT, status $P_CODE)"
		curl_note "$1"
	fi
}
group_bad() {
	local mode b t0 i names=()

	# quick ones: the proxy closes at once, or the client goes away at once
	for mode in garbage close-before close-after close-hello; do
		case_begin "bad-$mode"
		bad_start "$mode" 5
		b=$BAD
		bad_result "$b" 15
		case $mode in
		garbage)
			check "CONNECT status" "$RES_STATUS" 200
			check "closed by the proxy" "$RES_CLOSED" yes
			[ -n "$RES_AFTER" ] && [ "$RES_AFTER" -lt 2000 ] || err "closed after ${RES_AFTER:-?} ms (want < 2000)"
			;;
		close-before) ;;
		*) check "CONNECT status" "$RES_STATUS" 200 ;;
		esac
		if [ -n "$RES_LPORT" ]; then
			get_logline "$W/S.log" "$RES_LPORT"
			if [ "$mode" == garbage ]; then
				expect_log "$LOGLINE" tunnel=terminated close=client_not_tls
			else
				expect_log "$LOGLINE" "target=www.dane.test:$T" "close~^[a-z_]+$"
				[ "$(jget "$LOGLINE" close)" == "done" ] && [ "$mode" != close-before ] && err "the log says close=done for an aborted handshake"
			fi
		else
			err "the client never connected"
		fi
		normal_ok "normal-after-$mode"
		check_true "proxy S is running" alive "${PPID_OF[S]}"
		case_end
	done

	# stalls, all at once: half a ClientHello, nothing after 200, half a CONNECT head, a ClientHello trickled
	# one byte a second (never idle for the idle timeout), and 20 + 20 more garbage/half-hello clients
	local hh nh hd tr
	bad_start half-hello 12; hh=$BAD
	bad_start no-hello 12; nh=$BAD
	bad_start half-head 12; hd=$BAD
	bad_start trickle 12; tr=$BAD
	for ((i = 0; i < 20; i++)); do
		bad_start half-hello 12; names+=("$BAD")
		bad_start garbage 12; names+=("$BAD")
	done
	case_begin stalls-cost-only-their-connection
	for b in "$hh" "$nh" "$hd" "$tr" "${names[@]}"; do
		wait_for 15 bad_stalled "$b" || err "$b did not get into place: $(cat "$W/$b.out" "$W/$b.err" | tr '\n' ' ')"
	done
	now_ms; t0=$NOW
	normal_ok normal-during-stalls
	now_ms
	[ $((NOW - t0)) -lt 3000 ] || err "the normal request took $((NOW - t0)) ms while 44 bad clients hung (want < 3000)"
	echo "       normal request while 44 bad clients hang: $((NOW - t0)) ms"
	check_true "proxy S is running" alive "${PPID_OF[S]}"
	case_end

	# every stalled connection is closed by the proxy, within the configured limit plus slack
	stall_case() { # stall_case CASE CLIENT LIMIT_MS WHY
		case_begin "$1"
		bad_result "$2" 20
		check "closed by the proxy" "$RES_CLOSED" yes
		[ -n "$RES_AFTER" ] && [ "$RES_AFTER" -le "$3" ] || err "closed after ${RES_AFTER:-?} ms (want <= $3 ms: $4)"
		if [ -n "$RES_LPORT" ]; then
			get_logline "$W/S.log" "$RES_LPORT"
			expect_log "$LOGLINE" "close~^[a-z_]+$"
			note "log close: $(jget "$LOGLINE" close) $(jget "$LOGLINE" close_detail)"
		fi
		case_end
	}
	stall_case stall-half-clienthello "$hh" 8000 "idle_timeout 6s"
	stall_case stall-no-clienthello "$nh" 8000 "idle_timeout 6s"
	stall_case stall-half-connect-head "$hd" 4000 "header_timeout 2s counts from the first byte of the head"
	stall_case stall-trickled-clienthello "$tr" 5000 "handshake_timeout 2s must bound the client's TLS handshake; a byte a second keeps idle_timeout from firing"

	case_begin flood-clients-closed
	for b in "${names[@]}"; do
		bad_result "$b" 20
		[ "$RES_CLOSED" == yes ] || err "$b: not closed by the proxy (after ${RES_AFTER:-?} ms)"
	done
	case_end

	case_begin normal-after-all
	normal_ok normal-after-all
	check_true "proxy S is running" alive "${PPID_OF[S]}"
	case_end
}

# ================================================================= group: load (measured, not asserted)
# pct FILE P - the P-th percentile (nearest rank) of the time column (s) of successful lines, in ms
pct() {
	awk '$1 == 0 && $2 == 200 {print $3}' "$1" | sort -n | awk -v p="$2" '{a[NR]=$1} END {
		if (NR == 0) { print "n/a"; exit }
		i = int((p / 100) * NR + 0.999999); if (i < 1) i = 1; if (i > NR) i = NR; printf "%.1f", a[i] * 1000 }'
}
okcount() { awk '$1 == 0 && $2 == 200' "$1" | wc -l; }
cpu_ticks() { local s f; s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }; s=${s##*) }; read -r -a f <<<"$s"; echo $((f[11] + f[12])); }
# load_run NAME N CONC CURL-ARGS... - LOAD_WALL (s) and $W/load-NAME.txt
load_run() {
	local name=$1 n=$2 conc=$3 out
	shift 3
	out=$("$PY" "$HELPER" load "$n" "$conc" "$W/load-$name.txt" -- "$@" 2>"$W/load-$name.err")
	LOAD_WALL=$(sed -n 's/^wall_s=//p' <<<"$out")
}
group_load() {
	local N=${CONNECT_LOAD_N:-200} PAR=${CONNECT_LOAD_PAR:-50} url="https://www.dane.test:$T/marker.html" name conc ok
	local -a proxy_args=(-x "http://127.0.0.1:${PPORT[A]}" --cacert "$W/ca.pem" "$url")
	local -a direct_args=(--cacert "$TESTBED_CA_CERT" --resolve "www.dane.test:$T:127.0.0.1" "$url")
	local c0 c1 hz lines0 serials nserial first
	hz=$(getconf CLK_TCK 2>/dev/null || echo 100)
	preq warm A "$url?c=warm" --cacert "$W/ca.pem"
	first=$(cert_field warm "Serial Number")
	lines0=$(wc -l <"$W/A.log")
	c0=$(cpu_ticks "${PPID_OF[A]}")
	echo "load: $N new connections each run (one curl process per request), $(nproc) CPUs; seq = 1 at a time, par = $PAR at a time"
	printf 'load: %-12s %8s %10s %10s %10s %6s\n' run "conn/s" "p50 ms" "p90 ms" "wall s" ok
	for name in seq-proxy seq-direct par-proxy par-direct; do
		conc=1
		[[ $name == par-* ]] && conc=$PAR
		if [[ $name == *-proxy ]]; then
			load_run "$name" "$N" "$conc" "${proxy_args[@]}"
		else
			load_run "$name" "$N" "$conc" "${direct_args[@]}"
		fi
		ok=$(okcount "$W/load-$name.txt")
		printf 'load: %-12s %8s %10s %10s %10s %6s\n' "$name" \
			"$(awk -v n="$ok" -v w="${LOAD_WALL:-0}" 'BEGIN { if (w > 0) printf "%.0f", n / w; else print "n/a" }')" \
			"$(pct "$W/load-$name.txt" 50)" "$(pct "$W/load-$name.txt" 90)" "${LOAD_WALL:-n/a}" "$ok/$N"
	done
	c1=$(cpu_ticks "${PPID_OF[A]}")
	echo "load: proxy CPU $(awk -v t=$((c1 - c0)) -v hz="$hz" -v n=$((2 * N)) 'BEGIN { printf "%.0f ms total, %.2f ms per proxied connection", t * 1000 / hz, t * 1000 / hz / n }')"
	serials=$(cat "$W/load-seq-proxy.txt" "$W/load-par-proxy.txt" | awk '{print $4}' | sort | uniq -c)
	nserial=$(awk '$2 != "-"' <<<"$serials" | wc -l)
	echo "load: minted leaves for www.dane.test in $((2 * N)) proxied connections: $nserial distinct serial(s)" \
		"($(awk '$2 != "-" {printf "%s x%s ", $2, $1}' <<<"$serials"| cut -c1-120)); first leaf before the load: $first"
	if [ "$nserial" -eq 1 ] && [ "$(awk '$2 != "-" {print $2}' <<<"$serials")" == "$first" ]; then
		echo "load: mint cache: 0 mints during the load, hit rate $((2 * N))/$((2 * N)) = 100% (the name was minted once, by the warm-up request;" \
			"the proxy exports no mint counters, so this is inferred from the leaf serials clients saw)"
	fi

	case_begin load-proxied-all-ok
	for name in seq-proxy par-proxy seq-direct par-direct; do
		ok=$(okcount "$W/load-$name.txt")
		[ "$ok" -eq "$N" ] || err "$name: $ok of $N requests succeeded ($(awk '!($1 == 0 && $2 == 200) {print "curl " $1 " http " $2}' "$W/load-$name.txt" | sort | uniq -c | head -n 3 | tr '\n' ';'))"
	done
	# One log line per connection, also under load (written when each connection has closed).
	all_logged() { [ $(($(wc -l <"$W/A.log") - lines0)) -ge $((2 * N)) ]; }
	wait_for 5 all_logged
	check "log lines for $((2 * N)) proxied connections" "$(($(wc -l <"$W/A.log") - lines0))" "$((2 * N))"
	case_end
	case_begin mint-one-leaf-per-name
	check "distinct leaf serials for www.dane.test over $((2 * N)) connections" "$nserial" 1
	[ "$(awk '$2 != "-" {print $2}' <<<"$serials" | head -n 1)" == "$first" ] || err "the load saw a different leaf than the warm-up request"
	case_end
	case_alive A
}

# ================================================================= main

now_ms
T0=$NOW
echo "connect: work directory $RUN; origin https://*.dane.test:$T; daneproxy $DANEPROXY"
setup_ok=1
GROUP=setup
if nginx_start && proxy_start A; then
	if "$DANEPROXY" ca export --state-dir "$STATE" >"$W/ca.pem" 2>"$W/ca-export.err" && [ -s "$W/ca.pem" ]; then
		CA_SUBJECT=$(openssl x509 -in "$W/ca.pem" -noout -subject 2>/dev/null | sed -e 's/^subject= *//')
		proxy_start O "[policy]" "default = dane-only" &&
			proxy_start P "passthrough = www.dane.test" "passthrough = www.expired.dane.test" &&
			proxy_start S "[proxy]" "idle_timeout = 6s" "header_timeout = 2s" "handshake_timeout = 2s" &&
			proxy_start D "terminate = dane" &&
			proxy_start C || setup_ok=0
	else
		setup_fail "daneproxy ca export failed" "$W/ca-export.err"
		setup_ok=0
	fi
else
	setup_ok=0
fi

if [ "$setup_ok" = 1 ]; then
	for GROUP in "${GROUPS_WANTED[@]}"; do
		case "$GROUP" in
		curl) group_curl ;;
		chromium) group_chromium ;;
		bad) group_bad ;;
		load) group_load ;;
		*) setup_fail "unknown group $GROUP" ;;
		esac
	done
	# The CA is the same one throughout (the other proxies loaded it, none re-issued it).
	GROUP=end
	case_begin ca-unchanged
	"$DANEPROXY" ca export --state-dir "$STATE" >"$W/ca-end.pem" 2>/dev/null
	cmp -s "$W/ca.pem" "$W/ca-end.pem" || err "the CA changed during the run"
	for p in O P S C D; do grep -q 'newly issued' "$W/$p.out" "$W/$p.err" && err "proxy $p issued a new CA"; done
	case_end
	# SIGTERM: every proxy exits 0 within shutdown_grace (2 s) plus slack (sanitizer builds report leaks here)
	case_begin shutdown-clean
	for p in A O P S C D; do
		if alive "${PPID_OF[$p]}"; then
			stop_pid "${PPID_OF[$p]}" TERM
			check "proxy $p exit status after SIGTERM" "$STOP_RC" 0
			[ "$STOP_RC" == 0 ] || note "$p: $(tail -n 5 "$W/$p.err" | tr '\n' ' ')"
		else
			err "proxy $p is not running"
		fi
	done
	case_end
fi
cleanup

now_ms
npass=$(grep -c '^pass ' "$RESULTS")
nfail=$(grep -c '^fail ' "$RESULTS")
nskip=$(grep -c '^skip ' "$RESULTS")
echo "connect: ${GROUPS_WANTED[*]} in $(((NOW - T0) / 1000)).$(((NOW - T0) % 1000 / 100)) s; work directory $RUN"
[ "$nskip" -gt 0 ] && echo "$nskip skipped: $(grep '^skip ' "$RESULTS" | cut -d' ' -f2 | tr '\n' ' ')"
echo "$npass passed, $nfail failed"
if [ "$nfail" -eq 0 ] && [ "$npass" -gt 0 ] && [ "${CONNECT_KEEP:-0}" != 1 ]; then
	rm -rf "$RUN"
else
	rm -f "$W/www/big.bin" "$W/req-big.b" "$W/ka2.b" 2>/dev/null
fi
[ "$nfail" -eq 0 ] && [ "$npass" -gt 0 ]
