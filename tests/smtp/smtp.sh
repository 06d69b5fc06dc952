#!/usr/bin/env bash
# smtp.sh - mail tests with real software on loopback only: the DNSSEC test bed's mail cases (tests/testbed,
# README "Mail cases"), real MX servers (aiosmtpd, tests/smtp/mx_server.py, one per MX host address, some made
# to misbehave) and a real client (swaks). Every case checks what the client saw, the proxy's JSON log line (or
# the outbound module's report) and what reached the MX: the message byte for byte, or nothing at all.
#
# usage: smtp.sh DANEPROXY TESTBED_ENV GROUP [TEST_SMTP_OUT]
#   route   the `[route NAME] starttls = smtp` route: greeting (13 lines too), EHLO, STARTTLS, DANE, message intact;
#           no STARTTLS, 454, injection after the 220, a certificate the TLSA records do not name, bogus DNS
#   out     the outbound module (proxy/origin/smtp_out.c) driven by TEST_SMTP_OUT (tests/smtp/test_smtp_out.c)
#           against the same servers: RFC 7672 section 2 case by case
# Both run MX servers on the bed's MX host addresses at TESTBED_SMTP_PORT: never at the same time (ctest:
# RESOURCE_LOCK dnsbed_smtp_port). Prints "ok"/"FAIL" per case, then "N passed, N failed"; exits 1 on any failure.
# SMTP_KEEP=1 keeps the work directory (it is always kept when a case fails).
set -u
# shellcheck source=../lib/harness.bash
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.bash"
set -o pipefail

if [ $# -lt 3 ]; then
	echo "usage: $0 DANEPROXY TESTBED_ENV route|out [TEST_SMTP_OUT]" >&2
	exit 2
fi
DANEPROXY=$(readlink -f "$1")
ENVFILE=$2
GROUP=$3
TEST_SMTP_OUT=${4:-}
HERE=$(cd "$(dirname "$0")" && pwd)
if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=$(command -v python3 || true); fi
export LC_ALL=C

[ -x "$DANEPROXY" ] || { echo "smtp: $DANEPROXY is not executable" >&2; exit 2; }
[ -r "$ENVFILE" ] || { echo "smtp: no test bed env file $ENVFILE (is the dnsbed fixture running?)" >&2; exit 2; }
for tool in swaks setsid sha256sum; do
	command -v "$tool" >/dev/null || { echo "smtp: $tool is required (sh .ci/install-deps)" >&2; exit 2; }
done
[ -n "$PY" ] && "$PY" -c 'import aiosmtpd' 2>/dev/null ||
	{ echo "smtp: python3-aiosmtpd is required (sh .ci/install-deps)" >&2; exit 2; }
# shellcheck disable=SC1090
. "$ENVFILE"
for k in TESTBED_RESOLVER TESTBED_TRUST_ANCHOR TESTBED_SMTP_PORT TESTBED_CHAIN TESTBED_LEAF_KEY \
	TESTBED_SELFSIGNED_CERT TESTBED_SELFSIGNED_KEY TESTBED_LEAF_SPKI_SHA256 TESTBED_MXHOST_MX1 TESTBED_MAIL_CASES; do
	[ -n "${!k:-}" ] || { echo "smtp: $ENVFILE lacks $k (a bed from before the mail cases?)" >&2; exit 2; }
done
SMTP_PORT=$TESTBED_SMTP_PORT
SPKI=$TESTBED_LEAF_SPKI_SHA256

RUN=$(mktemp -d "${TMPDIR:-/tmp}/daneproxy-smtp.XXXXXX")
W=$RUN/$GROUP
mkdir -p "$W/spool" "$W/state"
RESULTS=$RUN/results
: >"$RESULTS"

# ---------------------------------------------------------------- ports and processes

PORT_BASE=8200
TAKEN=" "
free_port() {
	local p i
	for ((i = 0; i < 500; i++)); do
		p=$((PORT_BASE + RANDOM % 1500))
		case "$TAKEN" in *" $p "*) continue ;; esac
		port_used "$p" && continue
		TAKEN="$TAKEN$p "
		FREE=$p
		return 0
	done
	echo "smtp: no free port in $PORT_BASE.." >&2
	return 1
}

PIDS=()
stop_pid() {
	local pid=$1
	kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
	wait_for 3 not_alive "$pid" || true
	kill -KILL -- "-$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}
cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		stop_pid "$pid"
	done
	PIDS=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# mxhost ID - the name and address of a bed MX host: MXNAME, MXADDR
mxhost() {
	local n="TESTBED_MXHOST_$1" a="TESTBED_MXHOST_ADDR_$1"
	MXNAME=${!n:-}
	MXADDR=${!a:-}
	[ -n "$MXNAME" ] && [ -n "$MXADDR" ] || { echo "smtp: the bed has no MX host $1" >&2; return 1; }
}

# mx_start NAME HOST-ID MODE [CERT KEY] - an aiosmtpd MX on HOST-ID's address and the SMTP port, events in
# $W/spool/NAME.events; waits until it listens. MXPID[NAME] is its pid.
declare -A MXPID=()
mx_ready() { [ -e "$W/mx-$1.ready" ]; }
mx_ready_or_dead() { mx_ready "$1" || ! alive "${MXPID[$1]}"; }
mx_start() {
	local name=$1 id=$2 mode=$3 cert=${4:-$TESTBED_CHAIN} key=${5:-$TESTBED_LEAF_KEY}
	mxhost "$id" || return 1
	rm -f "$W/mx-$name.ready"
	spawn "mx-$name" "$PY" "$HERE/mx_server.py" --listen "$MXADDR:$SMTP_PORT" --name "$name" --spool "$W/spool" \
		--cert "$cert" --key "$key" --mode "$mode" --ready "$W/mx-$name.ready"
	MXPID[$name]=$SPAWNED
	wait_for 10 mx_ready_or_dead "$name"
	mx_ready "$name" && return 0
	setup_fail "MX $name ($mode on $MXADDR:$SMTP_PORT) did not start" "$W/mx-$name.err"
	return 1
}
mx_stop() {
	[ -n "${MXPID[$1]:-}" ] && stop_pid "${MXPID[$1]}"
	unset "MXPID[$1]"
}

# mx_saw NAME EVENT - the MX logged EVENT (connect, ehlo, starttls, tls, mail, rcpt, data, quit)
mx_saw() { grep -q "\"event\": \"$2\"" "$W/spool/$1.events" 2>/dev/null; }
mx_never() { ! mx_saw "$@"; }
# mx_field NAME EVENT KEY - KEY of the last EVENT line
mx_field() {
	grep "\"event\": \"$2\"" "$W/spool/$1.events" 2>/dev/null | tail -n 1 |
		"$PY" -c 'import json,sys; l=sys.stdin.read(); print(json.loads(l).get(sys.argv[1], "") if l else "")' "$3"
}

# ---------------------------------------------------------------- messages

# make_message FILE - a message with what must survive a relay byte for byte: dot lines (stuffed on the wire), a
# lone "." inside a line, long lines, 8-bit text (8BITMIME), trailing spaces; CRLF line endings, no final CRLF
# (swaks adds the one that ends the last line).
make_message() {
	{
		printf 'From: sender@client.test\r\nTo: rcpt@mail.test\r\nSubject: relay test %s\r\n' "$RANDOM"
		printf 'Message-ID: <%s@client.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n' "$RANDOM$RANDOM"
		printf 'Content-Transfer-Encoding: 8bit\r\n\r\n'
		printf 'Gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln.\r\n.\r\n..two dots\r\n.leading dot\r\nend . of line .\r\n'
		printf 'trailing spaces   \r\n'
		head -c 3000 /dev/urandom | base64 -w 76 | sed 's/$/\r/'
		printf '.\r\nlast line'
	} >"$1"
}

# swaks_send CASE PORT TO MSGFILE [SWAKS-ARG...] - one message through the proxy listener PORT in plaintext;
# S_RC (swaks's exit status), S_LPORT (the client port, for the log line); transcript in $W/CASE.swaks
swaks_send() {
	local cname=$1 port=$2 to=$3 msg=$4
	shift 4
	free_port || return 1
	S_LPORT=$FREE
	swaks --server "127.0.0.1:$port" --local-port "$S_LPORT" --from sender@client.test --to "$to" \
		--helo client.test --data "@$msg" --timeout 10 "$@" >"$W/$cname.swaks" 2>&1
	S_RC=$?
}

# saw_lines CASE - the reply lines swaks received ("<-  ...", "<** ..."), one per line
saw_lines() { sed -n -E 's/^<(-|\*\*) +//p' "$W/$1.swaks"; }

# ---------------------------------------------------------------- the proxy

PROXY_LOG=$W/proxy.log
proxy_ready() { [ "$(grep -c '^daneproxy: ready' "$W/proxy.out" 2>/dev/null)" -ge "$1" ]; }
proxy_ready_or_dead() { proxy_ready "$1" || ! alive "$PROXY_PID"; }

# start_route_proxy - one daneproxy with a STARTTLS route per target the route cases need; RP[NAME] their ports
declare -A RP=()
start_route_proxy() {
	local ini=$W/proxy.ini name target policy n=0
	{
		cat <<EOF
[proxy]
listen = 127.0.0.1:$(free_port && echo "$FREE")
log = $PROXY_LOG
ports = 25, 443, $SMTP_PORT
connect_timeout = 5s
handshake_timeout = 5s

[resolver]
upstream = $TESTBED_RESOLVER
trust_anchor = $TESTBED_TRUST_ANCHOR

[connect]
state_dir = $W/state
EOF
		while read -r name target policy; do
			free_port || return 1
			RP[$name]=$FREE
			printf '\n[route %s]\nlisten = 127.0.0.1:%s\ntarget = %s:%s\nstarttls = smtp\npolicy = %s\n' \
				"$name" "$FREE" "$target" "$SMTP_PORT" "$policy"
			n=$((n + 1))
		done <<EOF
mx1 $TESTBED_MXHOST_MX1 dane
alias $TESTBED_MXHOST_MX_ALIAS dane
selfsigned $TESTBED_MXHOST_MX_SELFSIGNED dane
unusable $TESTBED_MXHOST_MX_UNUSABLE dane
unusable_only $TESTBED_MXHOST_MX_UNUSABLE dane-only
notlsa_only $TESTBED_MXHOST_MX_NOTLSA dane-only
bogus $TESTBED_MXHOST_MX_BOGUS_ADDR dane
bogus_tlsa $TESTBED_MXHOST_MX_BOGUS_TLSA dane
dead $TESTBED_MXHOST_MX_DEAD dane
EOF
	} >"$ini" || return 1
	spawn proxy "$DANEPROXY" -c "$ini"
	PROXY_PID=$SPAWNED
	wait_for 15 proxy_ready_or_dead $((n + 1))
	proxy_ready $((n + 1)) && return 0
	setup_fail "daneproxy did not start its routes" "$W/proxy.out" "$W/proxy.err"
	return 1
}

# ---------------------------------------------------------------- group: route

# route_ok CASE ROUTE MXNAME [LOG-EXPECTATIONS...] - a message through ROUTE arrives at MXNAME intact, over TLS
route_ok() {
	local cname=$1 route=$2 mx=$3 msg=$W/$1.eml
	shift 3
	make_message "$msg"
	swaks_send "$cname" "${RP[$route]}" "rcpt@$TESTBED_MAIL_DOMAIN_SECURE" "$msg"
	check "swaks exit status" "$S_RC" 0
	check_true "swaks saw the queued reply" grep -q "^<-  250 2.0.0 Ok: queued as $mx" "$W/$cname.swaks"
	# what reached the MX: the message as sent (swaks ends the last line with CRLF), over TLS, after STARTTLS
	printf '\r\n' | cat "$msg" - >"$msg.expected"
	check "message at the MX (sha256)" "$(mx_field "$mx" data sha256)" "$(sha "$msg.expected")"
	check "the MX stored it" "$(sha "$(mx_field "$mx" data file)")" "$(sha "$msg.expected")"
	check "the message went over TLS" "$(mx_field "$mx" data tls)" True
	check "MAIL FROM over TLS" "$(mx_field "$mx" mail tls)" True
	check_true "the MX saw STARTTLS, then TLS" mx_saw "$mx" tls
	get_logline "$PROXY_LOG" "$S_LPORT"
	expect_log "$LOGLINE" listener=route error=null close=done "$@"
}

# route_refused CASE ROUTE MXNAME|- LOG-EXPECTATIONS... - the client's connection is closed without a greeting,
# and nothing of the client's reached the MX (MXNAME "-": no MX runs, nothing may even connect)
route_refused() {
	local cname=$1 route=$2 mx=$3 msg=$W/$1.eml
	shift 3
	make_message "$msg"
	swaks_send "$cname" "${RP[$route]}" "rcpt@$TESTBED_MAIL_DOMAIN_SECURE" "$msg"
	[ "$S_RC" -ne 0 ] || err "swaks succeeded through a refused route"
	check "what the client saw" "$(saw_lines "$cname" | grep -v '^Remote host closed\|^Timeout\|^Connection' | tr '\n' '|')" ""
	if [ "$mx" != - ]; then
		check_true "the MX never saw MAIL FROM" mx_never "$mx" mail
		check_true "the MX never saw RCPT TO" mx_never "$mx" rcpt
		check_true "the MX never saw DATA" mx_never "$mx" data
		check_true "the client's EHLO never reached the MX" bash -c "! grep -q '\"name\": \"client.test\"' '$W/spool/$mx.events'"
	fi
	get_logline "$PROXY_LOG" "$S_LPORT"
	expect_log "$LOGLINE" listener=route auth=null bytes_up=0 bytes_down=0 close=refused "$@"
}

group_route() {
	start_route_proxy || return

	case_begin route-dane-deliver
	if mx_start r1 MX1 normal; then
		route_ok route-dane-deliver mx1 r1 dnssec=secure auth=dane "tlsa=3 1 1 $SPKI" depth=0 tls=TLSv1.3 \
			"target=$TESTBED_MXHOST_MX1:$SMTP_PORT" "peer=$TESTBED_MXHOST_ADDR_MX1:$SMTP_PORT"
		# the client got the MX's own greeting, then talked to the MX over the proxy's TLS session
		check "greeting seen by the client" "$(saw_lines route-dane-deliver | head -n 1)" "220 r1 ESMTP aiosmtpd"
		check_true "the client's EHLO reached the MX over TLS" grep -q '"event": "ehlo", "name": "client.test", "peer": [0-9]*, "tls": true' "$W/spool/r1.events"
		check "the proxy's own EHLO came before STARTTLS, in plaintext" "$(grep '"event": "ehlo"' "$W/spool/r1.events" | head -n 1 | grep -c '"tls": false')" 1
		mx_stop r1
	fi
	case_end

	# The known bug: a greeting longer than 511 octets was replayed cut mid-line, without its final "220 " line.
	case_begin route-greeting-13-lines
	if mx_start r2 MX1 greeting13; then
		route_ok route-greeting-13-lines mx1 r2 auth=dane
		saw_lines route-greeting-13-lines | head -n 13 >"$W/greeting-seen"
		check "greeting lines seen by the client" "$(grep -c '^220-mx.example.net line [0-9][0-9]: welcome here, unauthorised use prohibited$' "$W/greeting-seen")" 12
		check "the greeting's last line" "$(sed -n 13p "$W/greeting-seen")" "220 mx.example.net ESMTP ready"
		check "greeting octets" "$(head -n 13 "$W/greeting-seen" | awk '{ n += length($0) + 2 } END { print n }')" 884
		mx_stop r2
	fi
	case_end

	case_begin route-cname-mx-host
	if mx_start r3 MX1 normal; then
		# mx-alias is a CNAME to mx1: its own TLSA matches nothing, the expanded name's does (RFC 7672 2.2.2)
		route_ok route-cname-mx-host alias r3 dnssec=secure auth=dane "tlsa=3 1 1 $SPKI" depth=0
		mx_stop r3
	fi
	case_end

	case_begin route-dane-ee-no-name-check
	if mx_start r4 MX_SELFSIGNED normal "$TESTBED_SELFSIGNED_CERT" "$TESTBED_SELFSIGNED_KEY"; then
		# a self-signed certificate naming another host: DANE-EE checks no name (RFC 7672 3.1.1)
		route_ok route-dane-ee-no-name-check selfsigned r4 auth=dane depth=0 "tlsa=3 1 1 $TESTBED_SELFSIGNED_SPKI_SHA256"
		mx_stop r4
	fi
	case_end

	case_begin route-unusable-tls-mandatory
	if mx_start r5 MX_UNUSABLE normal; then
		route_ok route-unusable-tls-mandatory unusable r5 "dnssec=secure, no usable records" auth=encrypt-only depth=null
		mx_stop r5
	fi
	case_end

	case_begin route-nostarttls-refused
	if mx_start r6 MX1 nostarttls; then
		route_refused route-nostarttls-refused mx1 r6 error=tls_protocol_error "details~does not offer STARTTLS \\(downgrade refused\\)"
		check_true "the MX saw only the proxy's EHLO" mx_saw r6 ehlo
		mx_stop r6
	fi
	case_end

	case_begin route-starttls-454-refused
	if mx_start r7 MX1 refuse454; then
		route_refused route-starttls-454-refused mx1 r7 error=tls_protocol_error "details~refuses STARTTLS \\(454\\)"
		check_true "the MX saw STARTTLS" mx_saw r7 starttls
		mx_stop r7
	fi
	case_end

	case_begin route-injection-after-220-refused
	if mx_start r8 MX1 inject; then
		route_refused route-injection-after-220-refused mx1 r8 error=tls_protocol_error "details~sent data after its STARTTLS reply"
		check_true "the MX never completed TLS" mx_never r8 tls
		mx_stop r8
	fi
	case_end

	case_begin route-tlsa-mismatch-refused
	if mx_start r9 MX1 normal "$TESTBED_SELFSIGNED_CERT" "$TESTBED_SELFSIGNED_KEY"; then
		route_refused route-tlsa-mismatch-refused mx1 r9 error=tls_certificate_error "details~^TLSA mismatch"
		mx_stop r9
	fi
	case_end

	case_begin route-dane-only-unusable-refused
	if mx_start r10 MX_UNUSABLE normal; then
		route_refused route-dane-only-unusable-refused unusable_only r10 error=tls_certificate_error "details~policy dane-only"
		check_true "the MX was never even connected to" mx_never r10 connect
		mx_stop r10
	fi
	case_end

	case_begin route-bogus-address-refused
	route_refused route-bogus-address-refused bogus - dnssec=bogus error=dns_error
	case_end

	case_begin route-bogus-tlsa-refused
	route_refused route-bogus-tlsa-refused bogus_tlsa - dnssec=bogus error=dns_error
	case_end

	case_begin route-dead-mx-refused
	route_refused route-dead-mx-refused dead - error=connection_refused
	case_end
}

# ---------------------------------------------------------------- group: out

group_out() {
	[ -x "$TEST_SMTP_OUT" ] || { setup_fail "no test_smtp_out binary given"; return; }
	case_begin out-placeholder
	case_end
}

case $GROUP in
	route) group_route ;;
	out) PORT_BASE=9000; group_out ;;
	*) echo "smtp: unknown group $GROUP" >&2; exit 2 ;;
esac
cleanup
npass=$(grep -c '^pass ' "$RESULTS")
nfail=$(grep -c '^fail ' "$RESULTS")
echo "smtp $GROUP: work directory $RUN"
echo "$npass passed, $nfail failed"
if [ "$nfail" -eq 0 ] && [ "$npass" -gt 0 ] && [ "${SMTP_KEEP:-0}" != 1 ]; then
	rm -rf "$RUN"
fi
[ "$nfail" -eq 0 ] && [ "$npass" -gt 0 ]
