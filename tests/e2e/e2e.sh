#!/usr/bin/env bash
# e2e.sh - end-to-end tests of daneproxy with real components on loopback only: the DNSSEC test bed
# (tests/testbed), nginx origins serving the bed's certificates, small Python peers that misbehave, and
# curl / raw-socket clients. Every case checks what the client sees AND the proxy's JSON log line.
#
# usage: e2e.sh DANEPROXY_BINARY TESTBED_ENV_FILE [GROUP...]
#   groups: dane (owns TESTBED_TLS_PORT), traffic (owns TESTBED_TLS_PORT2), faults, config, hardening,
#   hardening_daemon (tests/e2e/hardening.bash), inbound (tests/e2e/inbound.bash), service (tests/e2e/service.bash);
#   default: all, in turn.
#   Groups that own a TLSA port must not run at the same time as another user of that port (ctest: RESOURCE_LOCK).
# Prints "ok"/"FAIL" per case, then "N passed, N failed"; exits 1 on any failure, 2 on bad usage.
# E2E_KEEP=1 keeps the work directory (it is always kept when a case fails).
set -u
# shellcheck source=../lib/harness.bash
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.bash"
set -o pipefail

if [ $# -lt 2 ]; then
	echo "usage: $0 DANEPROXY_BINARY TESTBED_ENV_FILE [dane|traffic|faults|config]..." >&2
	exit 2
fi
DANEPROXY=$(readlink -f "$1")
ENVFILE=$2
shift 2
GROUPS_WANTED=("$@")
[ ${#GROUPS_WANTED[@]} -eq 0 ] && GROUPS_WANTED=(dane traffic faults config hardening hardening_daemon inbound service)

HERE=$(cd "$(dirname "$0")" && pwd)
HELPER=$HERE/e2e_helper.py
if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=$(command -v python3 || true); fi

for v in http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy NO_PROXY no_proxy; do unset "$v"; done
export LC_ALL=C

[ -x "$DANEPROXY" ] || { echo "e2e: $DANEPROXY is not executable" >&2; exit 2; }
[ -r "$ENVFILE" ] || { echo "e2e: no test bed env file $ENVFILE (is the dnsbed fixture running?)" >&2; exit 2; }
for tool in nginx curl openssl sha256sum setsid; do
	command -v "$tool" >/dev/null || { echo "e2e: $tool is required" >&2; exit 2; }
done
[ -n "$PY" ] || { echo "e2e: python3 is required" >&2; exit 2; }
# shellcheck disable=SC1090
. "$ENVFILE"
for k in TESTBED_RESOLVER TESTBED_TRUST_ANCHOR TESTBED_TLS_PORT TESTBED_TLS_PORT2 TESTBED_CHAIN TESTBED_LEAF_KEY \
	TESTBED_LEAF_CERT TESTBED_CA_CERT TESTBED_CA_KEY TESTBED_SELFSIGNED_CERT TESTBED_SELFSIGNED_KEY \
	TESTBED_LEAF_SPKI_SHA256 TESTBED_LEAF_SPKI_SHA512 TESTBED_CA_CERT_SHA256 TESTBED_SELFSIGNED_SPKI_SHA256; do
	[ -n "${!k:-}" ] || { echo "e2e: $ENVFILE lacks $k" >&2; exit 2; }
done

RUN=$(mktemp -d "${TMPDIR:-/tmp}/daneproxy-e2e.XXXXXX")
# The destination ports the proxies under test allow: 443 and every port tests and the bed pick (10000-32767).
TEST_PORTS=443,10000-32767
RESULTS=$RUN/results
: >"$RESULTS"
HAVE_V6=0
grep -q '^00000000000000000000000000000001 ' /proc/net/if_inet6 2>/dev/null && HAVE_V6=1

# ---------------------------------------------------------------- time, polling, ports



# ---------------------------------------------------------------- cases and checks

CASE=""
CASE_ERRS=()
CASE_NOTES=()



# ---------------------------------------------------------------- the proxy, origins, requests

declare -A PPORT=() PPIDOF=()
# start_proxy NAME NREADY ARG... - run daneproxy (bed resolver and anchor, log to $W/NAME.log) and wait for
# NREADY "ready" lines. The caller gives the listen/route options. Returns 1 if it never became ready.
start_proxy() {
	local name=$1 nready=$2
	shift 2
	spawn "$name" "$DANEPROXY" --resolver "$TESTBED_RESOLVER" --trust-anchor "$TESTBED_TRUST_ANCHOR" --ports "$TEST_PORTS" \
		--log "$W/$name.log" "$@"
	PPIDOF[$name]=$SPAWNED
}
proxy_ready() { [ "$(grep -c '^daneproxy: ready' "$W/$1.out" 2>/dev/null)" -ge "$2" ]; }
proxy_ready_or_dead() { proxy_ready "$1" "$2" || ! alive "${PPIDOF[$1]}"; }
await_proxy() {
	local name=$1 nready=$2
	wait_for 15 proxy_ready_or_dead "$name" "$nready"
	if proxy_ready "$name" "$nready"; then
		return 0
	fi
	setup_fail "proxy $name did not print $nready ready line(s)" "$W/$name.out" "$W/$name.err"
	return 1
}
# http_proxy NAME [ARG...] - an HTTP proxy listener on a free port; PPORT[NAME] is its port
http_proxy() {
	local name=$1
	shift
	free_port || return 1
	PPORT[$name]=$FREE
	start_proxy "$name" 1 --listen "127.0.0.1:$FREE" "$@"
}

# req NAME PROXYNAME URL [CURL-ARG...] - one request through the proxy in absolute form;
# R_CODE (000 when no response), R_LPORT (client port), R_TIME (s); $W/req-NAME.{h,b,err}
req() {
	local name=$1 proxy=$2 url=$3 out
	shift 3
	out=$(curl -sS --max-time 20 -o "$W/req-$name.b" -D "$W/req-$name.h" \
		-w '%{http_code} %{local_port} %{time_total}' --request-target "$url" "$@" \
		"http://127.0.0.1:${PPORT[$proxy]}/" 2>"$W/req-$name.err")
	read -r R_CODE R_LPORT R_TIME <<<"$out"
	R_CODE=${R_CODE:-000}
	R_LPORT=${R_LPORT:-0}
}

# nginx_start NAME TLS-PORT PROTOCOLS MARK [EXTRA-SERVER-CONFIG] - an HTTPS origin on 127.0.0.1 (and ::1) with
# the bed's chain; /hello answers MARK; NGX_LOG[NAME] is its access log. Waits until it listens.
declare -A NGX_LOG=()
WWW=""
make_content() {
	WWW=$W/www
	mkdir -p "$WWW" "$W/dav/up"
	head -c 5242880 /dev/urandom >"$WWW/big.bin"
	head -c 1572864 /dev/urandom >"$WWW/slow.bin"
	head -c 3000 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WWW/small.txt"
	head -c 150000 /dev/urandom | base64 >"$WWW/chunk.txt"
	free_port && NGX_ECHO_PORT=$FREE    # the plain-HTTP 404 server behind /echo
}
server_body() { # server_body MARK - the locations every origin server has
	cat <<EOF
    root $WWW;
    location = /hello { return 200 "$1\n"; }
    location = /204 { return 204; }
    location = /echo {
      client_max_body_size 32m; client_body_in_single_buffer on; client_body_buffer_size 32m;
      proxy_pass http://127.0.0.1:$NGX_ECHO_PORT; proxy_intercept_errors on; error_page 404 = @echo;
    }
    location @echo { return 200 \$request_body; }
    location /up/ { root $W/dav; dav_methods PUT DELETE; create_full_put_path on; client_max_body_size 0; }
    location /chunked/ { alias $WWW/; sub_filter '@@never@@' 'x'; sub_filter_types *; sub_filter_once off; }
    location /slow/ { alias $WWW/; limit_rate 1m; }
EOF
}
NGX_ECHO_PORT=0
nginx_start() {
	local name=$1 port=$2 protos=$3 mark=$4 extra=${5:-} d=$W/$1 v6=""
	mkdir -p "$d/tmp"
	[ "$HAVE_V6" = 1 ] && v6="listen [::1]:$port ssl;"
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
  types { text/plain txt; application/octet-stream bin; }
  default_type application/octet-stream;
  ssl_protocols $protos;
  keepalive_requests 10000;
  server { listen 127.0.0.1:$NGX_ECHO_PORT; access_log off; return 404; }
  server {
    listen 127.0.0.1:$port ssl; $v6
    server_name _;
    ssl_certificate $TESTBED_CHAIN; ssl_certificate_key $TESTBED_LEAF_KEY;
$(server_body "$mark")
  }
$extra
}
EOF
	} >"$d/nginx.conf"
	spawn "nginx-$name" nginx -p "$d" -e "$d/error.log" -c "$d/nginx.conf" -g 'daemon off;'
	NGX_LOG[$name]=$d/access.log
	local pid=$SPAWNED
	if ! wait_for 10 port_listening "$port" || ! alive "$pid"; then
		setup_fail "nginx $name did not start on port $port" "$W/nginx-$name.err" "$d/error.log"
		return 1
	fi
	wait_for 5 port_listening "$NGX_ECHO_PORT" || true
}

# helper NAME ARGS... - a Python peer that prints "ready PORT"; waits for it
helper_ready() { grep -q '^ready' "$W/$1.out" 2>/dev/null || ! alive "$2"; }
helper() {
	local name=$1
	shift
	spawn "$name" "$PY" "$HELPER" "$@"
	wait_for 10 helper_ready "$name" "$SPAWNED"
	grep -q '^ready' "$W/$name.out" || { setup_fail "helper $name did not start" "$W/$name.err"; return 1; }
}
raw() { "$PY" "$HELPER" raw "$@"; }
pyjson() { # pyjson JSON EXPR - evaluate a Python expression on parsed JSON (variable j)
	"$PY" -c 'import json,sys; j=json.loads(sys.argv[1]); v=eval(sys.argv[2]); print(json.dumps(v) if not isinstance(v,str) else v)' "$1" "$2" 2>/dev/null
}

# t_req PROXY CASE URL STATUS BODYMARK [LOG-EXPECTATIONS...] - one proxied request, checked end to end.
# BODYMARK: expected body ("" = not checked). For 5xx with an error=X expectation the Proxy-Status header
# must carry that error and a details parameter. For refusals the origin's access log must not see the request.
ORIGIN_LOG=""
t_req() {
	local proxy=$1 cname=$2 url=$3 want=$4 mark=$5 spec e="" ps
	shift 5
	case_begin "$cname"
	req "$cname" "$proxy" "$url"
	check "status" "$R_CODE" "$want"
	[ -n "$mark" ] && check "body" "$(tr -d '\r\n' <"$W/req-$cname.b" 2>/dev/null)" "$mark"
	for spec in "$@"; do [[ $spec == error=* ]] && e=${spec#error=}; done
	if [[ $want == 5* && -n $e && $e != null ]]; then
		ps=$(header "$W/req-$cname.h" Proxy-Status)
		check_re "Proxy-Status" "$ps" "^daneproxy; error=$e(; (rcode=\"[A-Z]+\"|info-code=[0-9]+))*; details=\"[^\"]+\""
	fi
	if [[ $want != 2* && -n $ORIGIN_LOG ]] && grep -q "c=${cname}[ &]" "$ORIGIN_LOG" 2>/dev/null; then
		err "the origin received the request although the proxy refused it"
	fi
	get_logline "$W/$proxy.log" "$R_LPORT"
	expect_log "$LOGLINE" "status=$want" "$@"
	[ "$R_CODE" == "$want" ] || note "curl: $(head -c 300 "$W/req-$cname.err" 2>/dev/null) $(head -c 300 "$W/req-$cname.h" | tr '\r\n' '  ')"
	case_end
}

# case_alive PROXY... - no proxy crashed or exited during the group
case_alive() {
	local n
	case_begin proxies-still-running
	for n in "$@"; do
		alive "${PPIDOF[$n]}" || err "proxy $n is gone: $(tail -c 400 "$W/$n.err" | tr '\n' ' ')"
		if grep -Eq 'runtime error|Sanitizer' "$W/$n.err"; then
			err "proxy $n: sanitizer report: $(grep -E -m1 -A3 'runtime error|Sanitizer' "$W/$n.err" | tr '\n' ' ')"
		fi
	done
	case_end
}

# ================================================================= group: dane (owns TESTBED_TLS_PORT)
# DANE-EE/-TA success, rollover, mismatch, bogus, insecure and secure absence under each policy, unusable-only
# records, CNAMEs, `daneproxy check`. The origin speaks TLS 1.3 only.
group_dane() {
	local T=$TESTBED_TLS_PORT SPKI=$TESTBED_LEAF_SPKI_SHA256 CA=$TESTBED_CA_CERT_SHA256 h p n d
	make_content
	# A rolled-over key: a new leaf for shortttl.dane.test (std TLSA: 3 1 1 old key + 2 0 1 CA) from the same CA.
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/rolled.key" \
		-subj /CN=shortttl.dane.test -out "$W/rolled.csr" 2>/dev/null
	printf 'subjectAltName=DNS:shortttl.dane.test,DNS:*.dane.test\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n' >"$W/rolled.ext"
	openssl x509 -req -in "$W/rolled.csr" -CA "$TESTBED_CA_CERT" -CAkey "$TESTBED_CA_KEY" \
		-set_serial "0x$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" \
		-days 10 -extfile "$W/rolled.ext" -out "$W/rolled.pem" 2>/dev/null
	cat "$W/rolled.pem" "$TESTBED_CA_CERT" >"$W/rolled-chain.pem"
	local v6=""
	[ "$HAVE_V6" = 1 ] && v6="listen [::1]:$T ssl;"
	nginx_start dane "$T" TLSv1.3 dane-origin "  server {
    listen 127.0.0.1:$T ssl; $v6
    server_name shortttl.dane.test;
    ssl_certificate $W/rolled-chain.pem; ssl_certificate_key $W/rolled.key;
$(server_body rolled-origin)
  }" || return
	ORIGIN_LOG=${NGX_LOG[dane]}

	http_proxy D                                         # dane, system trust store
	http_proxy DC --ca-file "$TESTBED_CA_CERT"           # dane, the bed's CA as PKIX store
	http_proxy O --policy dane-only --ca-file "$TESTBED_CA_CERT"
	http_proxy K --policy pkix --ca-file "$TESTBED_CA_CERT"
	http_proxy KS --policy pkix                          # pkix, system store
	for p in D DC O K KS; do await_proxy "$p" 1 || return; done

	local U="hello?c="
	# --- DANE success
	t_req D ee-www "https://www.dane.test:$T/${U}ee-www" 200 dane-origin policy=dane dnssec=secure auth=dane \
		"tlsa=3 1 1 $SPKI" depth=0 error=null tls=TLSv1.3 close=done "target=www.dane.test:$T"
	t_req D ee-only "https://ee.dane.test:$T/${U}ee-only" 200 dane-origin dnssec=secure auth=dane "tlsa=3 1 1 $SPKI" depth=0 error=null
	t_req D ee-sha512 "https://sha512.dane.test:$T/${U}ee-sha512" 200 dane-origin dnssec=secure auth=dane \
		"tlsa~^3 1 2 ${TESTBED_LEAF_SPKI_SHA512:0:40}" depth=0 error=null
	t_req D ta "https://ta.dane.test:$T/${U}ta" 200 dane-origin dnssec=secure auth=dane "tlsa=2 0 1 $CA" depth=1 error=null
	t_req D tafull-200 "https://tafull.dane.test:$T/${U}tafull-200" 200 dane-origin dnssec=secure auth=dane "tlsa~^2 0 0 30" depth=1 error=null
	t_req D nsec3 "https://www.nsec3.dane.test:$T/${U}nsec3" 200 dane-origin dnssec=secure auth=dane "tlsa=3 1 1 $SPKI" depth=0
	t_req D big-rrset "https://big.dane.test:$T/${U}big-rrset" 200 dane-origin dnssec=secure auth=dane "tlsa=3 1 1 $SPKI" depth=0
	# --- rollover: the key was replaced, the 3 1 1 record is stale, the 2 0 1 CA record of the same set still matches
	t_req D rollover-new-key "https://shortttl.dane.test:$T/${U}rollover-new-key" 200 rolled-origin dnssec=secure \
		auth=dane "tlsa=2 0 1 $CA" depth=1 error=null
	# --- TLSA mismatch: refused before any client byte reaches the origin, whatever the PKIX store says
	t_req D mismatch "https://mismatch.dane.test:$T/${U}mismatch" 502 "" dnssec=secure auth=null tlsa=null depth=null \
		error=tls_certificate_error "details~TLSA mismatch" "target=mismatch.dane.test:$T" bytes_up=0
	case_begin mismatch-body-explains
	grep -qi 'TLSA mismatch' "$W/req-mismatch.b" || err "the 502 body does not say TLSA mismatch: $(head -c 300 "$W/req-mismatch.b")"
	grep -q 'daneproxy check' "$W/req-mismatch.b" || err "the 502 body does not say what to check"
	case_end
	t_req DC mismatch-with-ca "https://mismatch.dane.test:$T/${U}mismatch-with-ca" 502 "" dnssec=secure auth=null error=tls_certificate_error
	t_req O mismatch-dane-only "https://mismatch.dane.test:$T/${U}mismatch-dane-only" 502 "" dnssec=secure error=tls_certificate_error
	t_req D agility "https://agility.dane.test:$T/${U}agility" 502 "" dnssec=secure auth=null error=tls_certificate_error
	t_req D selfsigned-wrong-cert "https://selfsigned.dane.test:$T/${U}selfsigned-wrong-cert" 502 "" dnssec=secure error=tls_certificate_error
	# --- pkix ignores TLSA: mismatch passes with a trusting store, www fails without one
	t_req K pkix-mismatch "https://mismatch.dane.test:$T/${U}pkix-mismatch" 200 dane-origin policy=pkix auth=pkix tlsa=null depth=null error=null
	t_req KS pkix-system-store "https://www.dane.test:$T/${U}pkix-system-store" 502 "" policy=pkix auth=null error=tls_certificate_error
	# --- PKIX-EE (1 1 1): needs PKIX and the record
	t_req DC pkix-ee-trusted "https://pkix-ee.dane.test:$T/${U}pkix-ee-trusted" 200 dane-origin dnssec=secure auth=dane "tlsa~^1 1 1 " depth=0
	t_req D pkix-ee-untrusted "https://pkix-ee.dane.test:$T/${U}pkix-ee-untrusted" 502 "" dnssec=secure error=tls_certificate_error
	# --- bogus: refused under every policy, even pkix with a trusting store
	for h in www.expired www.baddsl www.altered; do
		for p in D O K; do
			n=bogus-${h#www.}-$p
			t_req "$p" "$n" "https://$h.dane.test:$T/${U}$n" 502 "" dnssec=bogus auth=null tlsa=null error=dns_error \
				bytes_up=0 "details~bogus"
		done
	done
	# --- issue 11: a DNSSEC failure says its DNS RCODE and RFC 8914 Extended DNS Error (RFC 9209 dns_error)
	case_begin bogus-rcode-info-code
	check_re "Proxy-Status (expired)" "$(header "$W/req-bogus-expired-D.h" Proxy-Status)" \
		'^daneproxy; error=dns_error; rcode="SERVFAIL"; info-code=7; details="[^"]+"$'
	check_re "Proxy-Status (bad DS)" "$(header "$W/req-bogus-baddsl-D.h" Proxy-Status)" \
		'^daneproxy; error=dns_error; rcode="SERVFAIL"; info-code=[0-9]+; details="[^"]+"$'
	grep -q '"target": "www.expired.dane.test:[0-9]*".*"dns_rcode": "SERVFAIL", "dns_info_code": 7' "$W/D.log" ||
		err "no log line with dns_rcode SERVFAIL and dns_info_code 7 for www.expired"
	case_end
	# --- insecure, secure absence, unusable-only, insecure CNAME: the policy decides
	for h in www.insecure:insecure notlsa:"secure absence" nolabel:"secure absence" \
		unusable:"secure, no usable records" cname-insecure:insecure; do
		d=${h#*:}
		h=${h%%:*}
		n=${h#www.}
		t_req D "$n-dane-system-store" "https://$h.dane.test:$T/${U}$n-dane-system-store" 502 "" policy=dane "dnssec=$d" auth=null error=tls_certificate_error
		t_req DC "$n-dane-pkix-fallback" "https://$h.dane.test:$T/${U}$n-dane-pkix-fallback" 200 dane-origin policy=dane "dnssec=$d" auth=pkix tlsa=null depth=null error=null
		t_req O "$n-dane-only" "https://$h.dane.test:$T/${U}$n-dane-only" 502 "" policy=dane-only "dnssec=$d" auth=null error=tls_certificate_error "details~dane-only" peer=null
		t_req K "$n-pkix" "https://$h.dane.test:$T/${U}$n-pkix" 200 dane-origin policy=pkix auth=pkix tlsa=null error=null
	done
	# --- secure CNAME: authenticated only through the target's TLSA (its own TLSA is a random 3 1 1)
	t_req D cname-secure "https://cname-secure.dane.test:$T/${U}cname-secure" 200 dane-origin dnssec=secure auth=dane "tlsa=3 1 1 $SPKI" depth=0
	t_req O cname-secure-dane-only "https://cname-secure.dane.test:$T/${U}cname-secure-dane-only" 200 dane-origin dnssec=secure auth=dane "tlsa=3 1 1 $SPKI" depth=0
	# --- the origin must have seen every accepted request
	case_begin origin-saw-accepted
	for n in ee-www ta tafull-200 rollover-new-key cname-secure notlsa-dane-pkix-fallback; do
		grep -q "c=$n " "$ORIGIN_LOG" || err "the origin has no request c=$n"
	done
	case_end

	# --- daneproxy check
	local out rc
	check_cmd() { "$DANEPROXY" check "$@" --json --resolver "$TESTBED_RESOLVER" --trust-anchor "$TESTBED_TRUST_ANCHOR" 2>"$W/check.err"; }
	case_begin check-www
	out=$(check_cmd "www.dane.test:$T"); rc=$?
	check "exit" "$rc" 0
	check "authenticated" "$(pyjson "$out" 'j["authenticated"]')" true
	check "record" "$(pyjson "$out" 'j["record"]')" "3 1 1 $SPKI"
	check "depth" "$(pyjson "$out" 'j["depth"]')" 0
	check "dnssec" "$(pyjson "$out" 'j["dnssec"]')" secure
	case_end
	case_begin check-mismatch
	out=$(check_cmd "mismatch.dane.test:$T"); rc=$?
	check "exit" "$rc" 1
	check "authenticated" "$(pyjson "$out" 'j["authenticated"]')" false
	check "error" "$(pyjson "$out" 'j["error"]')" tls_certificate_error
	check_re "notes" "$(pyjson "$out" '" | ".join(j["notes"])')" "3 1 1 $SPKI"
	case_end
	case_begin check-bogus
	out=$(check_cmd "www.expired.dane.test:$T"); rc=$?
	check "exit" "$rc" 1
	check "dnssec" "$(pyjson "$out" 'j["dnssec"]')" bogus
	check "error" "$(pyjson "$out" 'j["error"]')" dns_error
	case_end
	case_begin check-bad-input
	check_cmd "not a host:xyz" >/dev/null; rc=$?
	check "exit" "$rc" 2
	case_end
	case_alive D DC O K KS
}

# ================================================================= group: traffic (owns TESTBED_TLS_PORT2)
# Bodies both ways, framing (HEAD, 204, 304, chunked), keep-alive and pipelining across origins, 50 concurrent
# clients, odd chains chosen by SNI, port-mapped routes, graceful SIGTERM. The origin speaks TLS 1.2 only.
group_traffic() {
	local T=$TESTBED_TLS_PORT2 SPKI=$TESTBED_LEAF_SPKI_SHA256 i out
	PORT_BASE=12000
	make_content
	local v6=""
	[ "$HAVE_V6" = 1 ] && v6="listen [::1]:$T ssl;"
	nginx_start traffic "$T" TLSv1.2 traffic-origin "  server {
    listen 127.0.0.1:$T ssl; $v6
    server_name ta.dane.test tafull.dane.test;
    ssl_certificate $TESTBED_LEAF_CERT; ssl_certificate_key $TESTBED_LEAF_KEY;
$(server_body leafonly-origin)
  }
  server {
    listen 127.0.0.1:$T ssl; $v6
    server_name selfsigned.dane.test;
    ssl_certificate $TESTBED_SELFSIGNED_CERT; ssl_certificate_key $TESTBED_SELFSIGNED_KEY;
$(server_body selfsigned-origin)
  }" || return
	ORIGIN_LOG=${NGX_LOG[traffic]}
	local RP RM RB
	free_port; RP=$FREE
	free_port; RM=$FREE
	free_port; RB=$FREE
	local P6="" np=4
	if [ "$HAVE_V6" = 1 ]; then
		free_port; P6=$FREE
		np=5
	fi
	http_proxy P --route "127.0.0.1:$RP=www.dane.test:$T" --route "127.0.0.1:$RM=mismatch.dane.test:$T" \
		--route "127.0.0.1:$RB=www.expired.dane.test:$T" ${P6:+--listen "[::1]:$P6"}
	http_proxy G
	await_proxy P "$np" || return
	await_proxy G 1 || return
	local W2="https://www.dane.test:$T"

	t_req P tls12 "$W2/hello?c=tls12" 200 traffic-origin dnssec=secure auth=dane "tlsa=3 1 1 $SPKI" depth=0 tls=TLSv1.2
	if [ -n "$P6" ]; then
		case_begin ipv6-client
		out=$(curl -sS --max-time 10 -g -o "$W/req-v6.b" -w '%{http_code} %{local_port}' --request-target "$W2/hello" \
			"http://[::1]:$P6/" 2>&1)
		check "status" "${out% *}" 200
		check "body" "$(cat "$W/req-v6.b" 2>/dev/null)" traffic-origin
		v6_logged() { grep -qF "\"client\": \"[::1]:${out#* }\"" "$W/P.log"; }
		wait_for 5 v6_logged || err "no log line with client [::1]:${out#* }"
		case_end
	fi
	# --- odd chains, chosen by SNI
	t_req P ta-leaf-only "https://ta.dane.test:$T/hello?c=ta-leaf-only" 502 "" dnssec=secure auth=null error=tls_certificate_error
	t_req P tafull-leaf-only "https://tafull.dane.test:$T/hello?c=tafull-leaf-only" 200 leafonly-origin dnssec=secure \
		auth=dane "tlsa~^2 0 0 30" depth=1 error=null
	t_req P selfsigned "https://selfsigned.dane.test:$T/hello?c=selfsigned" 200 selfsigned-origin dnssec=secure \
		auth=dane "tlsa=3 1 1 $TESTBED_SELFSIGNED_SPKI_SHA256" depth=0

	# --- large download
	case_begin download-5MB
	req dl P "$W2/big.bin"
	check "status" "$R_CODE" 200
	check "sha256" "$(sha "$W/req-dl.b")" "$(sha "$WWW/big.bin")"
	get_logline "$W/P.log" "$R_LPORT"
	expect_log "$LOGLINE" status=200 auth=dane "tlsa=3 1 1 $SPKI" depth=0 "bytes_down~^5[0-9]{6}$" error=null
	case_end
	# --- HEAD of the large file: a length but no body, and no hang
	case_begin head
	req head P "$W2/big.bin" -I
	check "status" "$R_CODE" 200
	check "Content-Length" "$(header "$W/req-head.h" Content-Length)" 5242880
	check_re "time" "$R_TIME" '^[0-4]\.'
	get_logline "$W/P.log" "$R_LPORT"
	expect_log "$LOGLINE" status=200 auth=dane requests=1 'bytes_down~^[0-9]{1,4}$'
	case_end
	case_begin status-204
	req s204 P "$W2/204"
	check "status" "$R_CODE" 204
	check_re "time" "$R_TIME" '^[0-4]\.'
	case_end
	case_begin status-304
	req e0 P "$W2/small.txt"
	local etag
	etag=$(header "$W/req-e0.h" ETag)
	req s304 P "$W2/small.txt" -H "If-None-Match: $etag"
	check "status" "$R_CODE" 304
	check "body bytes" "$(stat -c %s "$W/req-s304.b" 2>/dev/null || echo 0)" 0
	check_re "time" "$R_TIME" '^[0-4]\.'
	case_end
	# --- chunked response, forwarded with its framing
	case_begin chunked-response
	req chunked P "$W2/chunked/chunk.txt"
	check "status" "$R_CODE" 200
	check "Transfer-Encoding" "$(header "$W/req-chunked.h" Transfer-Encoding)" chunked
	check "sha256" "$(sha "$W/req-chunked.b")" "$(sha "$WWW/chunk.txt")"
	case_end
	# --- uploads
	head -c 5242880 /dev/urandom >"$W/up5m.bin"
	head -c 1048576 /dev/urandom >"$W/up1m.bin"
	head -c 20000 /dev/urandom >"$W/up20k.bin"
	t_up() { # t_up CASE EXPECT_STATUS FILE URLPATH CURL-ARGS... - a PUT, compared on disk
		case_begin "$1"
		rm -f "$W/dav$4"
		req "$1" P "$W2$4" "${@:5}"
		check_re "status" "$R_CODE" "$2"
		check "sha256 on the origin's disk" "$(sha "$W/dav$4")" "$(sha "$3")"
		get_logline "$W/P.log" "$R_LPORT"
		expect_log "$LOGLINE" auth=dane error=null
		[ -s "$W/req-$1.err" ] && note "curl: $(head -c 200 "$W/req-$1.err")"
		case_end
	}
	t_up put-20KB '^20[14]$' "$W/up20k.bin" /up/p20k.bin -T "$W/up20k.bin"
	t_up put-5MB '^20[14]$' "$W/up5m.bin" /up/p5m.bin -T "$W/up5m.bin" -H 'Expect:'
	t_up put-5MB-expect-100 '^20[14]$' "$W/up5m.bin" /up/p5m-100.bin -T "$W/up5m.bin" -H 'Expect: 100-continue'
	t_up put-1MB-chunked '^20[14]$' "$W/up1m.bin" /up/p1m-chunked.bin -X PUT -H 'Transfer-Encoding: chunked' \
		-H 'Expect:' --data-binary "@$W/up1m.bin"
	t_echo() { # t_echo CASE FILE CURL-ARGS... - a POST echoed back by the origin
		case_begin "$1"
		req "$1" P "$W2/echo" -H 'Content-Type: application/octet-stream' --data-binary "@$2" "${@:3}"
		check "status" "$R_CODE" 200
		check "echoed sha256" "$(sha "$W/req-$1.b")" "$(sha "$2")"
		get_logline "$W/P.log" "$R_LPORT"
		expect_log "$LOGLINE" status=200 auth=dane error=null
		[ -s "$W/req-$1.err" ] && note "curl: $(head -c 200 "$W/req-$1.err")"
		case_end
	}
	t_echo post-echo-20KB "$W/up20k.bin"
	t_echo post-echo-1MB "$W/up1m.bin" -H 'Expect:'
	t_echo post-echo-1MB-chunked "$W/up1m.bin" -H 'Expect:' -H 'Transfer-Encoding: chunked'

	# --- keep-alive: several requests one after the other on one client connection
	case_begin keepalive-sequential
	out=$("$PY" "$HELPER" pipeline 127.0.0.1 "${PPORT[P]}" --req GET "$W2/hello" --req GET "$W2/small.txt" \
		--req HEAD "$W2/big.bin" --req GET "$W2/204" --req GET "$W2/chunked/chunk.txt" --req GET "$W2/hello")
	check "error" "$(pyjson "$out" 'j["error"]')" null
	check "statuses" "$(pyjson "$out" '[r["status"] for r in j["responses"]]')" "[200, 200, 200, 204, 200, 200]"
	check "bodies" "$(pyjson "$out" '[r["sha256"] for r in j["responses"]][1:5:3]')" "[\"$(sha "$WWW/small.txt")\", \"$(sha "$WWW/chunk.txt")\"]"
	check "HEAD length" "$(pyjson "$out" 'j["responses"][2]["content_length"]')" 5242880
	check "open after" "$(pyjson "$out" 'j["open_after"]')" true
	get_logline "$W/P.log" "$(pyjson "$out" 'j["local_port"]')"
	expect_log "$LOGLINE" requests=6 auth=dane
	case_end
	# --- pipelining, across three origins (distinct host names and certificates) on one client connection
	case_begin pipelined-three-origins
	out=$("$PY" "$HELPER" pipeline 127.0.0.1 "${PPORT[P]}" --pipelined --req GET "$W2/hello" \
		--req GET "https://selfsigned.dane.test:$T/hello" --req GET "https://tafull.dane.test:$T/hello" \
		--req GET "$W2/small.txt" --req GET "https://selfsigned.dane.test:$T/hello")
	check "error" "$(pyjson "$out" 'j["error"]')" null
	check "statuses" "$(pyjson "$out" '[r["status"] for r in j["responses"]]')" "[200, 200, 200, 200, 200]"
	check "bodies" "$(pyjson "$out" '[r["body_head"].strip() for r in j["responses"]][0:3]+[j["responses"][4]["body_head"].strip()]')" \
		'["traffic-origin", "selfsigned-origin", "leafonly-origin", "selfsigned-origin"]'
	check "small.txt" "$(pyjson "$out" 'j["responses"][3]["sha256"]')" "$(sha "$WWW/small.txt")"
	get_logline "$W/P.log" "$(pyjson "$out" 'j["local_port"]')"
	expect_log "$LOGLINE" requests=5
	case_end

	# --- 50 concurrent clients
	case_begin concurrent-50
	local pids=() bad=0
	for ((i = 0; i < 50; i++)); do
		if ((i % 2)); then
			curl -s --max-time 20 -o "$W/conc-$i.b" -w '%{http_code} %{local_port}' --request-target "$W2/hello?c=conc-$i" \
				"http://127.0.0.1:${PPORT[P]}/" >"$W/conc-$i.r" 2>&1 &
		else
			curl -s --max-time 20 -o "$W/conc-$i.b" -w '%{http_code} %{local_port}' --request-target "$W2/small.txt?c=conc-$i" \
				"http://127.0.0.1:${PPORT[P]}/" >"$W/conc-$i.r" 2>&1 &
		fi
		pids+=($!)
	done
	for i in "${pids[@]}"; do wait "$i"; done
	for ((i = 0; i < 50; i++)); do
		local code lp
		read -r code lp <"$W/conc-$i.r"
		if [ "$code" != 200 ]; then bad=$((bad + 1)); note "client $i: $code"; continue; fi
		if ((i % 2)); then [ "$(cat "$W/conc-$i.b")" == traffic-origin ] || { bad=$((bad + 1)); note "client $i: wrong body"; }
		else [ "$(sha "$W/conc-$i.b")" == "$(sha "$WWW/small.txt")" ] || { bad=$((bad + 1)); note "client $i: wrong body"; }; fi
		get_logline "$W/P.log" "$lp"
		[[ $LOGLINE == *'"status": 200'*'"auth": "dane"'* ]] || { bad=$((bad + 1)); note "client $i log: $LOGLINE"; }
	done
	check "clients failed" "$bad" 0
	case_end

	# --- routes: a raw byte stream wrapped in DANE-verified TLS
	case_begin route-request
	printf 'GET /small.txt HTTP/1.1\r\nHost: www.dane.test\r\nConnection: close\r\n\r\n' >"$W/route-req"
	out=$(raw 127.0.0.1 "$RP" --send "$W/route-req" --out "$W/route-small" --strip-head)
	check "eof" "$(pyjson "$out" 'j["eof"]')" true
	check_re "status line" "$(pyjson "$out" 'j["head"]')" '^HTTP/1.1 200 '
	check "body" "$(sha "$W/route-small")" "$(sha "$WWW/small.txt")"
	get_logline "$W/P.log" "$(pyjson "$out" 'j["local_port"]')"
	expect_log "$LOGLINE" listener=route "target=www.dane.test:$T" dnssec=secure auth=dane "tlsa=3 1 1 $SPKI" depth=0 error=null close=done
	case_end
	# the client's FIN right after the request: the response must still arrive (nginx itself aborts a large
	# response when its client half-closes, so the file is small here; group faults has a half-close origin)
	case_begin route-half-close-small
	printf 'GET /small.txt HTTP/1.1\r\nHost: www.dane.test\r\n\r\n' >"$W/route-req-hc"
	out=$(raw 127.0.0.1 "$RP" --send "$W/route-req-hc" --half-close --out "$W/route-hc" --strip-head)
	check "eof" "$(pyjson "$out" 'j["eof"]')" true
	check "body after the client's FIN" "$(sha "$W/route-hc")" "$(sha "$WWW/small.txt")"
	get_logline "$W/P.log" "$(pyjson "$out" 'j["local_port"]')"
	expect_log "$LOGLINE" listener=route auth=dane close=done
	case_end
	case_begin route-download-5MB
	printf 'GET /big.bin HTTP/1.1\r\nHost: www.dane.test\r\nConnection: close\r\n\r\n' >"$W/route-req2"
	out=$(raw 127.0.0.1 "$RP" --send "$W/route-req2" --out "$W/route-big" --strip-head --timeout 20)
	check "eof" "$(pyjson "$out" 'j["eof"]')" true
	check "sha256" "$(sha "$W/route-big")" "$(sha "$WWW/big.bin")"
	get_logline "$W/P.log" "$(pyjson "$out" 'j["local_port"]')"
	expect_log "$LOGLINE" listener=route auth=dane "bytes_down~^5[0-9]{6}$" close=done
	case_end
	case_begin route-upload-5MB
	{ printf 'PUT /up/route5m.bin HTTP/1.1\r\nHost: www.dane.test\r\nContent-Length: 5242880\r\nConnection: close\r\n\r\n'; cat "$W/up5m.bin"; } >"$W/route-put"
	out=$(raw 127.0.0.1 "$RP" --send "$W/route-put" --timeout 20)
	check_re "status line" "$(pyjson "$out" 'j["head"]')" '^HTTP/1.1 20[14] '
	check "sha256 on the origin's disk" "$(sha "$W/dav/up/route5m.bin")" "$(sha "$W/up5m.bin")"
	get_logline "$W/P.log" "$(pyjson "$out" 'j["local_port"]')"
	expect_log "$LOGLINE" listener=route auth=dane "bytes_up~^5[0-9]{6}$"
	case_end
	local rn rport rerr rdns
	printf 'GET /hello?c=route-refused HTTP/1.1\r\nHost: www.dane.test\r\nConnection: close\r\n\r\n' >"$W/route-req-refused"
	for rn in mismatch:$RM:tls_certificate_error:secure expired:$RB:dns_error:bogus; do
		IFS=: read -r rn rport rerr rdns <<<"$rn"
		case_begin "route-$rn-closed"
		out=$(raw 127.0.0.1 "$rport" --send "$W/route-req-refused" --timeout 10)
		check "bytes received" "$(pyjson "$out" 'j["bytes"]')" 0
		check "closed" "$(pyjson "$out" 'j["eof"] or j["reset"]')" true
		get_logline "$W/P.log" "$(pyjson "$out" 'j["local_port"]')"
		expect_log "$LOGLINE" listener=route "dnssec=$rdns" auth=null "error=$rerr" bytes_up=0 bytes_down=0 close=refused
		case_end
	done
	case_begin route-refused-origin-saw-nothing
	grep -q 'c=route-refused' "$ORIGIN_LOG" && err "the origin received bytes sent on a refused route"
	case_end

	case_alive P

	# --- SIGTERM with a slow download open: stop accepting, finish the download, exit 0
	case_begin sigterm-graceful
	local gpid=${PPIDOF[G]} cpid rc
	curl -s --max-time 30 -o "$W/slow.b" -w '%{http_code}' --request-target "$W2/slow/slow.bin" \
		"http://127.0.0.1:${PPORT[G]}/" >"$W/slow.r" 2>&1 &
	cpid=$!
	slow_started() { [ -s "$W/slow.b" ]; }
	wait_for 10 slow_started || err "the slow download did not start"
	kill -TERM "$gpid"
	gport_closed() { ! port_listening "${PPORT[G]}"; }
	wait_for 3 gport_closed || err "the listener still accepts 3 s after SIGTERM"
	curl -s --max-time 3 -o /dev/null --request-target "$W2/hello" "http://127.0.0.1:${PPORT[G]}/" 2>/dev/null
	rc=$?
	[ "$rc" = 7 ] || err "a new connection after SIGTERM: curl exit $rc, want 7 (connection refused)"
	alive "$cpid" || err "the download was already over when the listener closed (test too fast to prove anything)"
	wait "$cpid"
	check "download status" "$(cat "$W/slow.r")" 200
	check "download sha256" "$(sha "$W/slow.b")" "$(sha "$WWW/slow.bin")"
	wait_for 10 not_alive "$gpid" || err "the proxy did not exit 10 s after the download"
	wait "$gpid"
	rc=$?
	check "proxy exit status" "$rc" 0
	grep -q '"status": 200' "$W/G.log" || err "no log line for the download"
	case_end
}

# ================================================================= group: faults (free ports only)
# Origins that reset, stall, send garbage or refuse; a resolver that never answers; clients that send malformed,
# oversized or slow requests - each with a normal request at the same time that must still succeed.
group_faults() {
	local i out
	PORT_BASE=14000
	make_content
	local FP RS ST GB CL BH
	free_port; FP=$FREE
	nginx_start faults "$FP" "TLSv1.2 TLSv1.3" faults-origin || return
	free_port; RS=$FREE
	free_port; ST=$FREE
	free_port; GB=$FREE
	free_port; CL=$FREE
	free_port; BH=$FREE
	helper reset origin reset "$RS" || return
	helper stall origin stall "$ST" || return
	helper garbage origin garbage "$GB" || return
	helper blackhole blackhole "$BH" || return
	local EE RH
	free_port; EE=$FREE
	free_port; RH=$FREE
	helper eofecho eofecho "$EE" "$TESTBED_CHAIN" "$TESTBED_LEAF_KEY" || return
	# names under dane.test on ports without TLSA: secure absence, PKIX fallback to the bed's CA
	http_proxy F --ca-file "$TESTBED_CA_CERT" --connect-timeout 1000 --route "127.0.0.1:$RH=www.dane.test:$EE"
	local NT
	free_port; NT=$FREE
	PPORT[T]=$NT
	spawn T "$DANEPROXY" --listen "127.0.0.1:$NT" --resolver "127.0.0.1@$BH" --trust-anchor "$TESTBED_TRUST_ANCHOR" --ports "$TEST_PORTS" \
		--dns-timeout 500 --log "$W/T.log"
	PPIDOF[T]=$SPAWNED
	# C: from a configuration file, with a 1 s header timeout
	local CP
	free_port; CP=$FREE
	PPORT[C]=$CP
	cat >"$W/c.ini" <<EOF
; misbehaving-client proxy
[proxy]
listen = 127.0.0.1:$CP
ports = $TEST_PORTS
header_timeout = 1s
log = $W/C.log

[resolver]
upstream = $TESTBED_RESOLVER
trust_anchor = $TESTBED_TRUST_ANCHOR

[policy]
default = dane
ca_file = $TESTBED_CA_CERT
EOF
	spawn C "$DANEPROXY" -c "$W/c.ini"
	PPIDOF[C]=$SPAWNED
	await_proxy F 2 || return
	for i in T C; do await_proxy "$i" 1 || return; done
	ORIGIN_LOG=${NGX_LOG[faults]}
	local OK="https://www.dane.test:$FP/hello"

	t_req F baseline "$OK?c=baseline" 200 faults-origin "dnssec=secure absence" auth=pkix tlsa=null error=null
	# --- route half-close: this origin answers only after the client's EOF, so the FIN must travel upstream
	# while the downstream direction stays open
	case_begin route-half-close-both-ways
	head -c 3000000 /dev/urandom >"$W/hc.bin"
	out=$(raw 127.0.0.1 "$RH" --send "$W/hc.bin" --half-close --timeout 15)
	check "answer after the FIN" "$(pyjson "$out" 'j["head"].strip()')" "3000000 $(sha "$W/hc.bin")"
	check "eof" "$(pyjson "$out" 'j["eof"]')" true
	get_logline "$W/F.log" "$(pyjson "$out" 'j["local_port"]')"
	expect_log "$LOGLINE" listener=route "dnssec=secure absence" auth=pkix bytes_up=3000000 close=done
	case_end
	# --- misbehaving origins
	t_req F origin-reset "https://www.dane.test:$RS/hello" 502 "" "dnssec=secure absence" auth=null \
		"error~^(tls_protocol_error|connection_terminated|connection_refused)$"
	case_begin origin-reset-proxy-status
	check_re "Proxy-Status" "$(header "$W/req-origin-reset.h" Proxy-Status)" '^daneproxy; error=[a-z_]+; details="[^"]+"'
	case_end
	t_req F origin-garbage "https://www.dane.test:$GB/hello" 502 "" error=tls_protocol_error auth=null
	t_req F origin-refused "https://www.dane.test:$CL/hello" 502 "" error=connection_refused auth=null "details~refused"
	# stall: the handshake times out after --connect-timeout 1000; a normal request meanwhile succeeds
	curl -s --max-time 20 -o "$W/stall.b" -D "$W/stall.h" -w '%{http_code} %{local_port} %{time_total}' \
		--request-target "https://www.dane.test:$ST/hello" "http://127.0.0.1:${PPORT[F]}/" >"$W/stall.r" 2>&1 &
	local spid=$!
	t_req F during-stall "$OK?c=during-stall" 200 faults-origin auth=pkix
	wait "$spid"
	case_begin origin-stall
	local code lp tt
	read -r code lp tt <"$W/stall.r"
	check "status" "$code" 504
	check_re "Proxy-Status" "$(header "$W/stall.h" Proxy-Status)" '^daneproxy; error=connection_timeout; details="[^"]+"'
	check_re "time (s)" "$tt" '^(0\.9|[1-3]\.)'
	get_logline "$W/F.log" "$lp"
	expect_log "$LOGLINE" status=504 error=connection_timeout auth=null
	case_end
	# --- a resolver that never answers
	t_req T dns-timeout-tcp "$OK?c=dns-timeout-tcp" 504 "" dnssec=timeout auth=null error=dns_timeout peer=null
	case_begin dns-timeout-tcp-within-2.9s
	check_re "time (s)" "$R_TIME" '^(0\.[4-9]|1\.|2\.[0-8])'
	case_end
	# UDP to the resolver: the daemon refuses it (getdns 1.6.0 crashes on lost UDP answers); the one-shot
	# lookup tool still offers it, and times out cleanly against the silent resolver.
	case_begin dns-udp-refused-by-daemon
	local out rc
	out=$("$DANEPROXY" -t --dns-udp 2>&1); rc=$?
	check "exit status" "$rc" 2
	check_re "message" "$out" 'udp is refused: getdns 1.6.0 crashes'
	case_end
	case_begin dns-timeout-udp-lookup
	out=$(timeout 20 "$DANEPROXY" lookup www.dane.test --resolver "127.0.0.1@$BH" \
		--trust-anchor "$TESTBED_TRUST_ANCHOR" --udp --timeout 500 --json 2>&1); rc=$?
	check "exit status" "$rc" 1
	check_re "outcome" "$out" '"outcome": "timeout"'
	case_end

	# --- misbehaving clients, all at once, with normal requests in between
	local url9k
	printf 'BLAH \001\002 nonsense\r\n\r\n' >"$W/bad-malformed"
	{
		printf 'GET %s HTTP/1.1\r\nHost: www.dane.test\r\n' "$OK"
		for ((i = 0; i < 300; i++)); do printf 'X-Padding-%03d: %s\r\n' "$i" "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"; done
		printf '\r\n'
	} >"$W/bad-oversize"
	url9k=$(head -c 9000 /dev/zero | tr '\0' 'a')
	printf 'GET https://www.dane.test:%s/%s HTTP/1.1\r\nHost: www.dane.test\r\n\r\n' "$FP" "$url9k" >"$W/bad-longurl"
	printf 'GET / HTTP/1.1\r\nHost: www.dane.test\r\n\r\n' >"$W/bad-originform"
	printf 'GET http://www.dane.test:%s/hello HTTP/1.1\r\nHost: www.dane.test\r\n\r\n' "$FP" >"$W/bad-http"
	printf 'GET %s?c=slow HTTP/1.1\r\nHost: www.dane.test\r\n\r\n' "$OK" >"$W/bad-slow"
	local b bpids=()
	for b in malformed oversize longurl originform http; do
		raw 127.0.0.1 "$CP" --send "$W/bad-$b" --timeout 10 >"$W/bad-$b.json" 2>&1 &
		bpids+=($!)
	done
	raw 127.0.0.1 "$CP" --send "$W/bad-slow" --dribble 0.1 --timeout 10 >"$W/bad-slow.json" 2>&1 &
	bpids+=($!)
	for ((i = 0; i < 4; i++)); do
		t_req C "normal-during-bad-clients-$i" "$OK?c=normal-during-bad-clients-$i" 200 faults-origin auth=pkix
	done
	for b in "${bpids[@]}"; do wait "$b"; done
	local want
	for b in malformed:400 oversize:431 longurl:414 originform:400 http:403; do
		want=${b#*:}
		b=${b%:*}
		case_begin "client-$b-$want"
		out=$(cat "$W/bad-$b.json")
		check_re "response" "$(pyjson "$out" 'j["head"]')" "^HTTP/1.1 $want "
		check "connection closed" "$(pyjson "$out" 'j["eof"] or j["reset"]')" true
		check "timed out" "$(pyjson "$out" 'j["timeout"]')" false
		get_logline "$W/C.log" "$(pyjson "$out" 'j["local_port"]')"
		expect_log "$LOGLINE" "status=$want" bytes_up=0
		case_end
	done
	case_begin client-slow-header-timeout
	out=$(cat "$W/bad-slow.json")
	check "connection closed" "$(pyjson "$out" 'j["eof"] or j["reset"] or j["send_error"] is not None')" true
	check "timed out (client side)" "$(pyjson "$out" 'j["timeout"]')" false
	check_re "closed after (s)" "$(pyjson "$out" 'j["elapsed"]')" '^(0\.9|1\.|2\.[0-9])'
	check_re "response" "$(pyjson "$out" 'j["head"]')" '^(|HTTP/1.1 408 .*)$'
	get_logline "$W/C.log" "$(pyjson "$out" 'j["local_port"]')"
	expect_log "$LOGLINE" close=header_timeout bytes_up=0
	case_end
	t_req C normal-after-bad-clients "$OK?c=normal-after-bad-clients" 200 faults-origin auth=pkix
	case_begin bad-clients-origin-saw-nothing
	grep -q 'X-Padding\|c=slow\|aaaaaaaaaa' "$ORIGIN_LOG" && err "the origin received a request from a misbehaving client"
	case_end
	case_alive F T C
}

# ================================================================= group: config
group_config() {
	local out rc f
	PORT_BASE=18000
	case_begin config-every-error
	f=$W/bad.ini
	cat >"$f" <<'EOF'
[proxy]
listen = 127.0.0.1:99999
max_connections = 0
frobnicate = yes
header_timeout = soon

[resolver]
timeout = -5ms

[policy]
default = maybe
rule = "*.example.com" sometimes
EOF
	out=$("$DANEPROXY" -t -c "$f" 2>&1); rc=$?
	[ "$rc" -ne 0 ] || err "exit status 0 for a file with errors"
	local ln
	for ln in 2:listen 3:max_connections 4:frobnicate 5:header_timeout 8:timeout 11:default 12:rule; do
		grep -Eq "^$f:${ln%%:*}: ${ln#*:}: .+" <<<"$out" || err "no '$f:${ln%%:*}: ${ln#*:}: problem' line"
	done
	[ ${#CASE_ERRS[@]} -eq 0 ] || note "output: $(tr '\n' '|' <<<"$out")"
	case_end

	case_begin config-unknown-key
	f=$W/unknown.ini
	printf '[proxy]\nlisten = 127.0.0.1:8080\nlisten_backlog = 5\n[wibble]\nx = 1\n' >"$f"
	out=$("$DANEPROXY" -t -c "$f" 2>&1); rc=$?
	[ "$rc" -ne 0 ] || err "exit status 0 with unknown keys"
	grep -Eq "^$f:3: listen_backlog: .+" <<<"$out" || err "no '$f:3: listen_backlog: problem' line"
	grep -Eq "^$f:[45]: .+" <<<"$out" || err "no error for the unknown section [wibble] (line 4/5)"
	[ ${#CASE_ERRS[@]} -eq 0 ] || note "output: $(tr '\n' '|' <<<"$out")"
	case_end

	case_begin config-valid-file
	f=$W/good.ini
	cat >"$f" <<EOF
# a complete, valid configuration
[proxy]
listen = 127.0.0.1:18080
listen = [::1]:18080
max_connections = 100
idle_timeout = 30s
header_timeout = 5s
connect_timeout = 2s
handshake_timeout = 2s
shutdown_grace = 3s
log = $W/good.log

[resolver]
upstream = $TESTBED_RESOLVER
trust_anchor = $TESTBED_TRUST_ANCHOR
transport = tcp
timeout = 2s

[policy]
default = dane
ca_file = $TESTBED_CA_CERT
rule = *.dane.test dane-only
rule = legacy.example:8443 pkix

[route smtp]
listen = 127.0.0.1:18025
target = www.dane.test:443
policy = dane-only
EOF
	out=$("$DANEPROXY" -t -c "$f" 2>&1); rc=$?
	check "exit" "$rc" 0
	[ "$rc" = 0 ] || note "output: $(tr '\n' '|' <<<"$out")"
	case_end

	# a non-loopback listener without --allow-from: refuses to start (never an open proxy). The address is
	# TEST-NET-1, on no interface: even a proxy that wrongly accepted it could not listen anywhere.
	case_begin config-open-proxy-refused
	free_port
	local port=$FREE pid
	spawn open "$DANEPROXY" --listen "192.0.2.1:$port" --resolver "$TESTBED_RESOLVER" --trust-anchor "$TESTBED_TRUST_ANCHOR" \
		--log "$W/open.log"
	pid=$SPAWNED
	if wait_for 5 not_alive "$pid"; then
		wait "$pid"; rc=$?
		[ "$rc" -ne 0 ] || err "exit status 0"
		grep -qi 'allow' "$W/open.err" || err "the message does not mention allow_from: $(head -c 300 "$W/open.err")"
		grep -q 'ready' "$W/open.out" && err "it printed ready"
	else
		err "daneproxy is still running with a non-loopback listener and no allow-list"
		stop_pid "$pid"
	fi
	out=$("$DANEPROXY" -t --listen "0.0.0.0:$port" 2>&1); rc=$?
	[ "$rc" -ne 0 ] || err "-t accepts a non-loopback listener without allow_from"
	printf '[proxy]\nlisten = 0.0.0.0:%s\n' "$port" >"$W/open.ini"
	out=$("$DANEPROXY" -t -c "$W/open.ini" 2>&1); rc=$?
	[ "$rc" -ne 0 ] || err "-t -c accepts a non-loopback listener without allow_from"
	out=$("$DANEPROXY" -t --listen "0.0.0.0:$port" --allow-from 127.0.0.0/8 2>&1); rc=$?
	check "with --allow-from, -t exit" "$rc" 0
	[ "$rc" = 0 ] || note "output: $out"
	case_end

	case_begin config-cli-errors
	out=$("$DANEPROXY" -t --listen 127.0.0.1:notaport --policy sometimes --route nonsense 2>&1); rc=$?
	[ "$rc" -ne 0 ] || err "exit status 0"
	grep -q -- '--listen' <<<"$out" || err "no error naming --listen"
	grep -q -- '--policy' <<<"$out" || err "no error naming --policy"
	grep -q -- '--route' <<<"$out" || err "no error naming --route"
	[ ${#CASE_ERRS[@]} -eq 0 ] || note "output: $(tr '\n' '|' <<<"$out")"
	case_end
}

# ================================================================= issue 9 regression groups
# shellcheck source=hardening.bash
. "$HERE/hardening.bash"
# ================================================================= issue 10: the inbound redesign
# shellcheck source=inbound.bash
. "$HERE/inbound.bash"
# ================================================================= issue 13: running as a service
# shellcheck source=service.bash
. "$HERE/service.bash"

# ================================================================= main

# Each group runs in a subshell whose EXIT trap stops every process it started. The subshell runs in the
# background so that a signal to this script is handled at once: it is passed on to the subshell and to the
# subshell's children (by parent pid), whose ends let the subshell's trap run.
GROUP_PID=""
run_group() {
	local t0
	GROUP=$1
	W=$RUN/$GROUP
	mkdir -p "$W"
	now_ms; t0=$NOW
	(
		trap cleanup EXIT
		trap 'exit 130' INT TERM
		case "$GROUP" in
		dane) PORT_BASE=10000; group_dane ;;
		traffic) group_traffic ;;
		faults) group_faults ;;
		config) group_config ;;
		hardening) PORT_BASE=15000; group_hardening ;;
		hardening_daemon) PORT_BASE=19000; group_hardening_daemon ;;
		inbound) PORT_BASE=13000; group_inbound ;;
		service) PORT_BASE=11000; group_service ;;
		*) setup_fail "unknown group $GROUP" ;;
		esac
	) &
	GROUP_PID=$!
	wait "$GROUP_PID"
	GROUP_PID=""
	now_ms
	echo "== $GROUP: $(((NOW - t0) / 1000)).$(((NOW - t0) % 1000 / 100)) s"
}
on_signal() {
	if [ -n "$GROUP_PID" ]; then
		kill -TERM "$GROUP_PID" 2>/dev/null
		pkill -TERM -P "$GROUP_PID" 2>/dev/null
		wait "$GROUP_PID" 2>/dev/null
	fi
	echo "e2e: interrupted; work directory $RUN"
	exit 130
}
trap on_signal INT TERM

now_ms
T0=$NOW
for g in "${GROUPS_WANTED[@]}"; do
	run_group "$g"
done
now_ms
npass=$(grep -c '^pass ' "$RESULTS")
nfail=$(grep -c '^fail ' "$RESULTS")
echo "e2e: ${GROUPS_WANTED[*]} in $(((NOW - T0) / 1000)).$(((NOW - T0) % 1000 / 100)) s; work directory $RUN"
echo "$npass passed, $nfail failed"
if [ "$nfail" -eq 0 ] && [ "$npass" -gt 0 ] && [ "${E2E_KEEP:-0}" != 1 ]; then
	rm -rf "$RUN"
else
	find "$RUN" \( -name '*.bin' -o -name 'req-dl.b' -o -name 'route-big' -o -name 'route-put' -o -name 'slow.b' \) -size +1M -delete 2>/dev/null
fi
[ "$nfail" -eq 0 ] && [ "$npass" -gt 0 ]
