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
#   smarthost  the SMTP smarthost ([smtp NAME] listeners, proxy/daemon/smtp.c): swaks and raw_client.py relay
#           through it to the MX of each recipient domain: the MX's own replies, one domain per transaction,
#           DANE / encrypt / none by the DNS and the policy, deferrals and bounces, SIZE and 8BITMIME end to end,
#           pipelining, smuggling and oversized content refused, clients that leave early; one log line per
#           transaction
# All run MX servers on the bed's MX host addresses at TESTBED_SMTP_PORT: never at the same time (ctest:
# RESOURCE_LOCK dnsbed_smtp_port). Prints "ok"/"FAIL" per case, then "N passed, N failed"; exits 1 on any failure.
# SMTP_KEEP=1 keeps the work directory (it is always kept when a case fails).
set -u
# shellcheck source=../lib/harness.bash
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.bash"
set -o pipefail

if [ $# -lt 3 ]; then
	echo "usage: $0 DANEPROXY TESTBED_ENV route|out|smarthost [TEST_SMTP_OUT]" >&2
	exit 2
fi
DANEPROXY=$(readlink -f "$1")
ENVFILE=$2
GROUP=$3
TEST_SMTP_OUT=${4:-}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=mail.bash disable=SC1091
. "$HERE/mail.bash"
mail_setup smtp

# start_route_proxy - one daneproxy with a STARTTLS route per target the route cases need; RP[NAME] their ports
declare -A RP=()
start_route_proxy() {
	local ini=$W/proxy.ini name target policy n=0
	{
		proxy_ini_head "ports = 25, 443, $SMTP_PORT" || return 1
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
	proxy_start "$ini" $((n + 1)) routes
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

# out_run CASE ARG... - test_smtp_out with ARG (its JSON lines in $W/CASE.json); O_RC its exit status
out_run() {
	local cname=$1
	shift
	TESTBED_ENV=$ENVFILE "$TEST_SMTP_OUT" "$@" >"$W/$cname.json" 2>"$W/$cname.err"
	O_RC=$?
	[ "$O_RC" -eq 0 ] || err "test_smtp_out exit status $O_RC: $(tail -n 3 "$W/$cname.err" | tr '\n' ' ')"
}

# ofield CASE KEY - a value from CASE's JSON lines: "K" of the (first) open report, "mx_failed.N.K", "reply.WHAT.K"
# (the last reply to mail, rcpt, data or end), "event.WHAT" (its detail), "opens.K" (K of every report, space-separated)
ofield() {
	"$PY" - "$W/$1.json" "$2" <<'PYEOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
key = sys.argv[2].split(".")
reports = [l for l in lines if "reply" not in l and "event" not in l]
def show(v):
    return "null" if v is None else json.dumps(v) if isinstance(v, (list, dict)) else str(v)
try:
    if key[0] == "mx_failed":
        v = reports[0]["mx_failed"][int(key[1])][key[2]]
    elif key[0] == "reply":
        v = [l for l in lines if l.get("reply") == key[1]][-1][key[2]]
    elif key[0] == "event":
        v = [l for l in lines if l.get("event") == key[1]][-1]["detail"]
    elif key[0] == "opens":
        v = " ".join(show(r[key[1]]) for r in reports)
    elif key[0] == "count":
        v = len([l for l in lines if l.get("reply") == key[1]])
    else:
        v = reports[0][key[0]]
    print(show(v))
except (IndexError, KeyError):
    print("<absent>")
PYEOF
}

# expect_out CASE key=value|key~regex ... - check fields (as ofield names them)
expect_out() {
	local cname=$1 spec key val got
	shift
	for spec in "$@"; do
		[[ $spec =~ ^([a-z_.0-9-]+)([=~])(.*)$ ]] || { err "bad expectation $spec"; continue; }
		key=${BASH_REMATCH[1]}
		val=${BASH_REMATCH[3]}
		got=$(ofield "$cname" "$key")
		if [ "${BASH_REMATCH[2]}" == "=" ]; then
			[ "$got" == "$val" ] || err "$key: got '$got', want '$val'"
		else
			[[ $got =~ $val ]] || err "$key: got '$got', want /$val/"
		fi
	done
	[ ${#CASE_ERRS[@]} -eq 0 ] || note "report: $(head -n 1 "$W/$cname.json")"
}

# delivered CASE MX - the case's message reached MX over TLS (or, with a third argument "plain", without), intact
delivered() {
	local cname=$1 mx=$2 tls=${3:-True}
	check "reply to the end of data" "$(ofield "$cname" reply.end.code)" 250
	check "message at the MX (sha256)" "$(mx_field "$mx" data sha256)" "$(sha "$W/$cname.expected")"
	check "the MX stored it" "$(sha "$(mx_field "$mx" data file)")" "$(sha "$W/$cname.expected")"
	check "over TLS" "$(mx_field "$mx" data tls)" "$tls"
	check "our EHLO name at the MX" "$(mx_field "$mx" ehlo name)" smarthost.client.test
}

# out_deliver CASE MAIL-ID [ARG...] - one transaction to the mail case's domain with a fresh message
out_deliver() {
	local cname=$1 id=$2 d
	shift 2
	d="TESTBED_MAIL_DOMAIN_$id"
	make_message "$W/$cname.eml"
	# the MX stores what the client meant: the message, its last line ended by CRLF (dot-stuffing undone)
	printf '\r\n' | cat "$W/$cname.eml" - >"$W/$cname.expected"
	out_run "$cname" --domain "${!d}" --message "$W/$cname.eml" "$@"
}

# out_refused CASE MAIL-ID CODE ENHANCED ERROR [ARG...] - the open fails with that reply for the client
out_refused() {
	local cname=$1 id=$2 code=$3 enh=$4 error=$5 d
	shift 5
	d="TESTBED_MAIL_DOMAIN_$id"
	out_run "$cname" --domain "${!d}" --open-only "$@"
	expect_out "$cname" "smtp_error=$error" "smtp_code=$code" "smtp_enhanced=$enh" mx_host=null tls=null
}

# nothing_reached MX... - none of these MX servers saw a transaction (or, with -c, even a connection)
nothing_reached() {
	local mx conn=0
	[ "$1" == -c ] && { conn=1; shift; }
	for mx in "$@"; do
		check_true "$mx never saw MAIL FROM" mx_never "$mx" mail
		check_true "$mx never saw DATA" mx_never "$mx" data
		[ "$conn" = 0 ] || check_true "$mx was never connected to" mx_never "$mx" connect
	done
}

group_out() {
	local CA=$TESTBED_CA_CERT_SHA256
	[ -x "$TEST_SMTP_OUT" ] || { setup_fail "no test_smtp_out binary given"; return; }

	# --- DANE delivered: what RFC 7672 section 2 asks, end to end
	case_begin out-dane-secure-mx
	if mx_start o1 MX1 normal; then
		out_deliver out-dane-secure-mx SECURE
		expect_out out-dane-secure-mx smtp_error=null "mx_host=$TESTBED_MXHOST_MX1" mx_preference=10 mx_dnssec=secure \
			addr_dnssec=secure tlsa_lookup=True tlsa_dnssec=secure tlsa_usable=2 tls=dane depth=0 \
			"tlsa=3 1 1 $SPKI" "tlsa_name=_${SMTP_PORT}._tcp.$TESTBED_MXHOST_MX1" tls_version~^TLSv1\.[23]$ \
			"ehlo~PIPELINING" "ehlo~SIZE=10240000" ehlo_pipelining=1 mx_failed_count=0 reply.mail.code=250 \
			reply.rcpt.code=250 reply.data.code=354 reply.end.enhanced=2.0.0
		delivered out-dane-secure-mx o1
		check "the first EHLO was plaintext, then STARTTLS, then EHLO on TLS" \
			"$(grep -o '"event": "[a-z]*"' "$W/spool/o1.events" | sed -n '3,6p' | tr '\n' ' ')" \
			'"event": "ehlo" "event": "starttls" "event": "tls" "event": "ehlo" '
		check "the MX saw the commands pipelined" "$(mx_field o1 mail pipelined)" True
	fi
	case_end

	case_begin out-content-split-every-octet
	if [ -n "${MXPID[o1]:-}" ]; then
		out_deliver out-content-split-every-octet SECURE --chunk 1
		expect_out out-content-split-every-octet tls=dane
		delivered out-content-split-every-octet o1
	fi
	mx_stop o1
	case_end

	case_begin out-pipelining-off-when-not-offered
	if mx_start o2 MX1 plain; then
		out_deliver out-pipelining-off-when-not-offered SECURE --rcpt a@x.test --rcpt b@x.test --rcpt c@x.test
		expect_out out-pipelining-off-when-not-offered tls=dane ehlo_pipelining=0 count.rcpt=3 reply.rcpt.code=250
		delivered out-pipelining-off-when-not-offered o2
		check "no command came before the previous reply (the MX held its reply to MAIL 1 s)" \
			"$(grep -c '"pipelined": true' "$W/spool/o2.events")" 0
		check "three recipients" "$(grep -c '"event": "rcpt"' "$W/spool/o2.events")" 3
		mx_stop o2
	fi
	case_end

	case_begin out-greeting-13-lines
	if mx_start o3 MX1 greeting13; then
		out_deliver out-greeting-13-lines SECURE
		expect_out out-greeting-13-lines tls=dane depth=0
		delivered out-greeting-13-lines o3
		mx_stop o3
	fi
	case_end

	case_begin out-first-mx-unreachable-next
	if mx_start o4 MX2 normal; then
		out_deliver out-first-mx-unreachable-next MULTI
		expect_out out-first-mx-unreachable-next "mx_host=$TESTBED_MXHOST_MX2" mx_preference=20 tls=dane mx_failed_count=1 \
			"mx_failed.0.host=$TESTBED_MXHOST_MX_DEAD" mx_failed.0.preference=10 "mx_failed.0.reason=cannot connect" \
			"mx_failed.0.addr=$TESTBED_MXHOST_ADDR_MX_DEAD:$SMTP_PORT"
		delivered out-first-mx-unreachable-next o4
		mx_stop o4
	fi
	case_end

	case_begin out-all-mx-unreachable-defers
	out_refused out-all-mx-unreachable-defers MULTI 451 4.4.1 "no MX host could take the mail"
	expect_out out-all-mx-unreachable-defers mx_failed_count=2 "mx_failed.0.host=$TESTBED_MXHOST_MX_DEAD" \
		"mx_failed.1.host=$TESTBED_MXHOST_MX2" "mx_failed.1.reason=cannot connect"
	case_end

	case_begin out-equal-preference-random
	if mx_start o5a MX1 normal && mx_start o5b MX2 normal; then
		out_run out-equal-preference-random --domain "$TESTBED_MAIL_DOMAIN_EQUAL" --open-only --opens 16
		used=$(ofield out-equal-preference-random opens.mx_host)
		check "16 sessions" "$(wc -w <<<"$used")" 16
		check_true "mx1 was chosen (16 tries)" grep -q "$TESTBED_MXHOST_MX1" <<<"$used"
		check_true "mx2 was chosen (16 tries)" grep -q "$TESTBED_MXHOST_MX2" <<<"$used"
		check "every session at preference 10" "$(ofield out-equal-preference-random opens.mx_preference | tr ' ' '\n' | sort -u)" 10
		check "QUIT at each MX" "$(($(grep -c '"event": "quit"' "$W/spool/o5a.events") + $(grep -c '"event": "quit"' "$W/spool/o5b.events")))" 16
		mx_stop o5a
		mx_stop o5b
	fi
	case_end

	case_begin out-no-mx-implicit
	if mx_start o6 MX_NOMX normal; then
		out_deliver out-no-mx-implicit NOMX
		expect_out out-no-mx-implicit mx_implicit=True mx_count=0 mx_dnssec=secure "mx_host=$TESTBED_MAIL_DOMAIN_NOMX" \
			mx_preference=0 tls=dane depth=0 "tlsa_name=_${SMTP_PORT}._tcp.$TESTBED_MAIL_DOMAIN_NOMX"
		delivered out-no-mx-implicit o6
		mx_stop o6
	fi
	case_end

	case_begin out-cname-mx-host
	if mx_start o7 MX1 normal; then
		out_deliver out-cname-mx-host CNAME_MX
		expect_out out-cname-mx-host "mx_host=$TESTBED_MXHOST_MX_ALIAS" tls=dane depth=0 "tlsa=3 1 1 $SPKI" \
			"tlsa_name=_${SMTP_PORT}._tcp.$TESTBED_MXHOST_MX1"
		delivered out-cname-mx-host o7
	fi
	case_end

	case_begin out-cname-domain
	if [ -n "${MXPID[o7]:-}" ]; then
		out_deliver out-cname-domain ALIAS
		expect_out out-cname-domain "domain_cname=$TESTBED_MAIL_DOMAIN_SECURE" mx_dnssec=secure tls=dane
		delivered out-cname-domain o7
	fi
	case_end

	# --- no DANE: the MX RRset is unsigned (directly, or through a signed CNAME)
	case_begin out-insecure-mx-opportunistic
	if [ -n "${MXPID[o7]:-}" ]; then
		out_deliver out-insecure-mx-opportunistic INSECURE
		# mx1 has secure TLSA, but reached through an unsigned MX RRset DANE does not apply: no TLSA lookup
		expect_out out-insecure-mx-opportunistic mx_dnssec=insecure tlsa_lookup=False tlsa_name=null tls=encrypt \
			"verdict~opportunistic" depth=null tlsa=null
		delivered out-insecure-mx-opportunistic o7
	fi
	case_end

	case_begin out-cname-to-insecure-mx
	if [ -n "${MXPID[o7]:-}" ]; then
		out_deliver out-cname-to-insecure-mx ALIAS_INSECURE
		expect_out out-cname-to-insecure-mx "domain_cname=$TESTBED_MAIL_DOMAIN_INSECURE" mx_dnssec=insecure \
			tlsa_lookup=False tls=encrypt
		delivered out-cname-to-insecure-mx o7
	fi
	case_end

	case_begin out-insecure-mx-dane-only-defers
	if [ -n "${MXPID[o7]:-}" ]; then
		: >"$W/spool/o7.events"
		out_refused out-insecure-mx-dane-only-defers INSECURE 451 4.7.5 \
			"policy dane-only: the MX records are not DNSSEC-signed" --policy dane-only
		nothing_reached -c o7
	fi
	case_end

	case_begin out-encrypt-ignores-tlsa
	if [ -n "${MXPID[o7]:-}" ]; then
		out_deliver out-encrypt-ignores-tlsa SECURE --policy encrypt
		expect_out out-encrypt-ignores-tlsa tls=encrypt tlsa_lookup=False "verdict~policy encrypt" depth=null
		delivered out-encrypt-ignores-tlsa o7
	fi
	mx_stop o7
	case_end

	# --- DNS that defers or bounces, never delivered
	case_begin out-null-mx
	out_refused out-null-mx NULLMX 556 5.1.10 "the domain accepts no mail (null MX)"
	case_end

	case_begin out-no-such-domain
	out_refused out-no-such-domain NX 550 5.1.2 "the domain does not exist"
	case_end

	case_begin out-bogus-mx-defers
	if mx_start o8 MX1 normal; then
		out_refused out-bogus-mx-defers BOGUS 451 4.4.3 "the MX records failed DNSSEC validation"
		expect_out out-bogus-mx-defers mx_dnssec=bogus
		nothing_reached -c o8
		mx_stop o8
	fi
	case_end

	case_begin out-bad-domain
	out_run out-bad-domain --domain 'bad..domain' --open-only
	expect_out out-bad-domain "smtp_error=not a valid mail domain" smtp_code=501 smtp_enhanced=5.1.3
	case_end

	case_begin out-bogus-address-skips-host
	if mx_start o9 MX2 normal; then
		out_deliver out-bogus-address-skips-host BOGUS_ADDR
		expect_out out-bogus-address-skips-host "mx_host=$TESTBED_MXHOST_MX2" tls=dane mx_failed_count=1 \
			"mx_failed.0.host=$TESTBED_MXHOST_MX_BOGUS_ADDR" "mx_failed.0.reason=the host's DNS lookup failed" \
			"mx_failed.0.detail~^bogus" mx_failed.0.addr=null
		delivered out-bogus-address-skips-host o9
	fi
	case_end

	case_begin out-bogus-tlsa-skips-host
	if [ -n "${MXPID[o9]:-}" ] && mx_start o10 MX_BOGUS_TLSA normal; then
		# a bogus TLSA RRset is never "no TLSA": that host is not even connected to
		out_deliver out-bogus-tlsa-skips-host BOGUS_TLSA
		expect_out out-bogus-tlsa-skips-host "mx_host=$TESTBED_MXHOST_MX2" tls=dane \
			"mx_failed.0.host=$TESTBED_MXHOST_MX_BOGUS_TLSA" "mx_failed.0.reason=the host's DNS lookup failed" \
			"mx_failed.0.detail~TLSA"
		delivered out-bogus-tlsa-skips-host o9
		nothing_reached -c o10
		mx_stop o10
	fi
	mx_stop o9
	case_end

	# --- DANE failures: never delivered over that host, the next one tried, else deferred 4.7.5
	case_begin out-tlsa-mismatch-defers
	if mx_start o11 MX_MISMATCH normal; then
		out_refused out-tlsa-mismatch-defers MISMATCH 451 4.7.5 "no MX host could take the mail"
		expect_out out-tlsa-mismatch-defers "mx_failed.0.reason=DANE authentication failed" \
			"mx_failed.0.detail~: TLSA mismatch: " "mx_failed.0.addr=$TESTBED_MXHOST_ADDR_MX_MISMATCH:$SMTP_PORT"
		nothing_reached o11
	fi
	case_end

	case_begin out-tlsa-mismatch-next-mx
	if [ -n "${MXPID[o11]:-}" ] && mx_start o12 MX2 normal; then
		out_deliver out-tlsa-mismatch-next-mx MISMATCH_NEXT
		expect_out out-tlsa-mismatch-next-mx "mx_host=$TESTBED_MXHOST_MX2" tls=dane "mx_failed.0.host=$TESTBED_MXHOST_MX_MISMATCH" \
			"mx_failed.0.reason=DANE authentication failed"
		delivered out-tlsa-mismatch-next-mx o12
		nothing_reached o11
		mx_stop o12
	fi
	mx_stop o11
	case_end

	case_begin out-certificate-not-in-tlsa
	if mx_start o13 MX1 normal "$TESTBED_SELFSIGNED_CERT" "$TESTBED_SELFSIGNED_KEY"; then
		out_refused out-certificate-not-in-tlsa SECURE 451 4.7.5 "no MX host could take the mail"
		expect_out out-certificate-not-in-tlsa "mx_failed.0.reason=DANE authentication failed"
		nothing_reached o13
		mx_stop o13
	fi
	case_end

	case_begin out-nostarttls-with-tlsa-defers
	if mx_start o14 MX1 nostarttls; then
		out_refused out-nostarttls-with-tlsa-defers SECURE 451 4.7.5 "no MX host could take the mail"
		expect_out out-nostarttls-with-tlsa-defers "mx_failed.0.reason=STARTTLS mandatory and not offered (downgrade refused)"
		nothing_reached o14
		mx_stop o14
	fi
	case_end

	case_begin out-starttls-454-defers
	if mx_start o15 MX1 refuse454; then
		out_refused out-starttls-454-defers SECURE 451 4.7.5 "no MX host could take the mail"
		expect_out out-starttls-454-defers "mx_failed.0.reason=STARTTLS refused" "mx_failed.0.detail~\\(454\\)"
		nothing_reached o15
		mx_stop o15
	fi
	case_end

	case_begin out-injection-after-220-defers
	if mx_start o16 MX1 inject; then
		out_refused out-injection-after-220-defers SECURE 451 4.7.5 "no MX host could take the mail"
		expect_out out-injection-after-220-defers "mx_failed.0.reason=data after the 220 to STARTTLS (command injection)"
		check_true "no TLS with the injecting MX" mx_never o16 tls
		nothing_reached o16
		mx_stop o16
	fi
	case_end

	# --- the other TLSA outcomes
	case_begin out-dane-ta-destination-domain-name
	if mx_start o17 MX_TA normal; then
		# DANE-TA: the leaf names *.dane.test, which covers the destination domain, not this two-label MX host
		out_deliver out-dane-ta-destination-domain-name TA
		expect_out out-dane-ta-destination-domain-name tls=dane depth=1 "tlsa=2 0 1 $CA" \
			"verdict~DANE-TA"
		delivered out-dane-ta-destination-domain-name o17
		mx_stop o17
	fi
	case_end

	case_begin out-dane-ee-no-name-check
	if mx_start o18 MX_SELFSIGNED normal "$TESTBED_SELFSIGNED_CERT" "$TESTBED_SELFSIGNED_KEY"; then
		out_deliver out-dane-ee-no-name-check SELFSIGNED
		expect_out out-dane-ee-no-name-check tls=dane depth=0 "tlsa=3 1 1 $TESTBED_SELFSIGNED_SPKI_SHA256"
		delivered out-dane-ee-no-name-check o18
		mx_stop o18
	fi
	case_end

	case_begin out-unusable-tls-mandatory
	if mx_start o19 MX_UNUSABLE normal "$TESTBED_SELFSIGNED_CERT" "$TESTBED_SELFSIGNED_KEY"; then
		# usages 0 and 1 and a short digest: none usable for SMTP; TLS stays mandatory, any certificate
		out_deliver out-unusable-tls-mandatory UNUSABLE
		expect_out out-unusable-tls-mandatory tls=encrypt "tlsa_dnssec=secure, no usable records" tlsa_usable=0 \
			"verdict~every TLSA record unusable" depth=null
		delivered out-unusable-tls-mandatory o19
		mx_stop o19
	fi
	case_end

	case_begin out-unusable-nostarttls-defers
	if mx_start o20 MX_UNUSABLE nostarttls; then
		out_refused out-unusable-nostarttls-defers UNUSABLE 451 4.7.5 "no MX host could take the mail"
		expect_out out-unusable-nostarttls-defers "mx_failed.0.reason=STARTTLS mandatory and not offered (downgrade refused)"
		nothing_reached o20
		mx_stop o20
	fi
	case_end

	case_begin out-unusable-dane-only-defers
	if mx_start o21 MX_UNUSABLE normal; then
		out_refused out-unusable-dane-only-defers UNUSABLE 451 4.7.5 "no MX host could take the mail" --policy dane-only
		expect_out out-unusable-dane-only-defers "mx_failed.0.reason=policy dane-only: the host has no secure usable TLSA record"
		nothing_reached -c o21
		mx_stop o21
	fi
	case_end

	case_begin out-no-tlsa-opportunistic
	if mx_start o22 MX_NOTLSA normal "$TESTBED_SELFSIGNED_CERT" "$TESTBED_SELFSIGNED_KEY"; then
		out_deliver out-no-tlsa-opportunistic NOTLSA
		expect_out out-no-tlsa-opportunistic tls=encrypt "tlsa_dnssec=secure absence" tlsa_lookup=True \
			"verdict~opportunistic"
		delivered out-no-tlsa-opportunistic o22
		mx_stop o22
	fi
	case_end

	case_begin out-no-tlsa-no-starttls-plaintext
	if mx_start o23 MX_NOTLSA nostarttls; then
		# the only case that ends in plaintext: no secure TLSA, policy dane, and no STARTTLS offered
		out_deliver out-no-tlsa-no-starttls-plaintext NOTLSA
		expect_out out-no-tlsa-no-starttls-plaintext tls=none verdict=null tls_version=null
		delivered out-no-tlsa-no-starttls-plaintext o23 False
	fi
	case_end

	case_begin out-encrypt-no-starttls-defers
	if [ -n "${MXPID[o23]:-}" ]; then
		: >"$W/spool/o23.events"
		out_refused out-encrypt-no-starttls-defers NOTLSA 451 4.7.5 "no MX host could take the mail" --policy encrypt
		expect_out out-encrypt-no-starttls-defers "mx_failed.0.reason=STARTTLS mandatory and not offered (downgrade refused)"
		nothing_reached o23
	fi
	mx_stop o23
	case_end

	case_begin out-no-tlsa-454-never-plaintext
	if mx_start o24 MX_NOTLSA refuse454; then
		out_refused out-no-tlsa-454-never-plaintext NOTLSA 451 4.7.5 "no MX host could take the mail"
		expect_out out-no-tlsa-454-never-plaintext "mx_failed.0.reason=STARTTLS refused"
		nothing_reached o24
		mx_stop o24
	fi
	case_end

	case_begin out-no-tlsa-dane-only-defers
	if mx_start o25 MX_NOTLSA normal; then
		out_refused out-no-tlsa-dane-only-defers NOTLSA 451 4.7.5 "no MX host could take the mail" --policy dane-only
		nothing_reached -c o25
		mx_stop o25
	fi
	case_end

	case_begin out-insecure-host-opportunistic
	if mx_start o26 MX_INSECURE normal; then
		out_deliver out-insecure-host-opportunistic INSECURE_HOST
		expect_out out-insecure-host-opportunistic mx_dnssec=secure addr_dnssec=insecure tlsa_dnssec=null tlsa_lookup=False \
			tls=encrypt
		delivered out-insecure-host-opportunistic o26
		mx_stop o26
	fi
	case_end

	# --- the session: replies passed through, content the MX could misread refused
	case_begin out-recipient-refused
	if mx_start o27 MX1 reject; then
		out_deliver out-recipient-refused SECURE
		expect_out out-recipient-refused tls=dane reply.mail.code=250 reply.rcpt.code=550 reply.rcpt.enhanced=5.1.1 \
			"reply.rcpt.text~no such user" reply.data.code=503
		check_true "no message at the MX" mx_never o27 data
		mx_stop o27
	fi
	case_end

	case_begin out-content-smuggling-refused
	if mx_start o28 MX1 normal; then
		printf 'Subject: a\r\n\r\nfirst\r\n.\r\nMAIL FROM:<evil@x.test>\r\n' >"$W/smuggle1"
		printf 'Subject: b\r\n\r\nfirst\n.\nRCPT TO:<evil@x.test>\r\n' >"$W/smuggle2"
		printf 'Subject: c\r\n\r\nfirst\r\n.\rMAIL FROM:<evil@x.test>\r\n' >"$W/smuggle3"
		out_run out-content-smuggling-refused-1 --domain "$TESTBED_MAIL_DOMAIN_SECURE" --content "$W/smuggle1"
		out_run out-content-smuggling-refused-2 --domain "$TESTBED_MAIL_DOMAIN_SECURE" --content "$W/smuggle2"
		out_run out-content-smuggling-refused-3 --domain "$TESTBED_MAIL_DOMAIN_SECURE" --content "$W/smuggle3" --chunk 1
		for n in 1 2 3; do
			expect_out "out-content-smuggling-refused-$n" reply.data.code=354 "event.content-refused~^message content refused" \
				reply.end.code='<absent>'
		done
		check_true "no message reached the MX" mx_never o28 data
		check "the smuggled commands never reached the MX" "$(grep -c 'evil@' "$W/spool/o28.events")" 0
		mx_stop o28
	fi
	case_end
}

# ---------------------------------------------------------------- group: smarthost

# smarthost_proxy - the group's daneproxy: a listener per policy, one with a small max_message_size, and [policy]
# rules naming two domains, to show that they override a listener's policy
smarthost_proxy() {
	start_smarthost "$TESTBED_MAIL_DOMAIN_NOTLSA dane-only" "$TESTBED_MAIL_DOMAIN_ALIAS pkix" <<EOF
dane dane
only dane-only
enc encrypt
small dane max_message_size = $SMALL_MAX
slowrcpt dane reply_timeout = 1s
slowdata dane data_timeout = 1s
once dane max_attempts = 1
EOF
}

group_smarthost() {
	local S=$TESTBED_MAIL_DOMAIN_SECURE m
	SMALL_MAX=10000
	# The MX servers, all at once: mx1 and mx2 well-behaved, and the misbehaving ones on hosts of their own
	mx_spawn s1 MX1 normal || return
	mx_spawn s2 MX2 normal || return
	mx_spawn smm MX_MISMATCH normal || return
	mx_spawn snt MX_SELFSIGNED nostarttls || return
	mx_spawn sinj MX_TA inject || return
	mx_spawn s8 MX_NOMX no8bit || return
	smarthost_proxy || return
	for m in s1 s2 smm snt sinj s8; do
		mx_wait "$m" || return
	done

	case_begin smarthost-dane-delivered
	sh_deliver smarthost-dane-delivered dane s1 "rcpt@$S" domain="$S" policy=dane mx_dnssec=secure \
		"mx_host=$TESTBED_MXHOST_MX1" mx_preference=10 addr_secure=true tlsa_dnssec=secure tls=dane "tlsa=3 1 1 $SPKI" \
		depth=0 "peer=$TESTBED_MXHOST_ADDR_MX1:$SMTP_PORT" mx_failed.#=0 recipients_accepted=1 recipients_refused=0 \
		listener=smtp event=transaction "mx_ms~^[0-9.]+$" "handshake_ms~^[0-9.]+$" "data_ms~^[0-9.]+$" "duration_ms~^[0-9.]+$"
	check "the greeting" "$(saw_lines smarthost-dane-delivered | head -n 1)" \
		"220 smarthost.client.test ESMTP daneproxy: DANE-enforcing smarthost"
	check "what EHLO announced" "$(saw_lines smarthost-dane-delivered | sed -n '3,6p' | tr '\n' '|')" \
		"250-PIPELINING|250-SIZE 52428800|250-8BITMIME|250 ENHANCEDSTATUSCODES|"
	check "MAIL answered by the smarthost" "$(saw_lines smarthost-dane-delivered | sed -n 7p)" "250 2.1.0 sender ok"
	check "RCPT answered by the MX" "$(saw_lines smarthost-dane-delivered | sed -n 8p)" "250 2.1.5 Ok"
	check "MAIL at the MX over TLS, the client's sender" "$(mx_field s1 mail tls) $(mx_field s1 mail sender)" \
		"True sender@client.test"
	check "the smarthost's EHLO name at the MX" "$(mx_field s1 ehlo name)" smarthost.client.test
	check_true "no client EHLO reached the MX" bash -c "! grep -q '\"name\": \"client.test\"' '$W/spool/s1.events'"
	conn_line "$S_LPORT"
	expect_log "$CONNLINE" listener=smtp close=done "target=$S:$SMTP_PORT"
	case_end

	case_begin smarthost-two-recipients-one-session
	mx_reset s1
	sh_deliver smarthost-two-recipients-one-session dane s1 "one@$S,two@$S" recipients_accepted=2 recipients_refused=0 tls=dane
	check "connections at the MX" "$(mx_count s1 connect)" 1
	check "MAIL at the MX" "$(mx_count s1 mail)" 1
	check "recipients of the message" "$(mx_field s1 data rcpts)" "['one@$S', 'two@$S']"
	case_end

	case_begin smarthost-other-domain-452
	mx_reset s1 s2
	sh_deliver smarthost-other-domain-452 dane s1 "first@$S,other@$TESTBED_MAIL_DOMAIN_MULTI" recipients_accepted=1 \
		recipients_refused=1 "domain=$S"
	check "the other domain's recipient" "$(saw_lines smarthost-other-domain-452 | sed -n 9p)" \
		"452 4.5.3 one destination domain per transaction ($S): send mail for $TESTBED_MAIL_DOMAIN_MULTI in another"
	check "recipients of the message" "$(mx_field s1 data rcpts)" "['first@$S']"
	never_connected s2
	case_end

	case_begin smarthost-mx-refuses-recipient
	mx_reset s1
	sh_deliver smarthost-mx-refuses-recipient dane s1 "reject-me@$S,ok@$S" recipients_accepted=1 recipients_refused=1
	check "the MX's refusal, relayed" "$(saw_lines smarthost-mx-refuses-recipient | sed -n 8p)" \
		"550 5.1.1 <reject-me@$S>: Recipient address rejected: no such user"
	check "recipients of the message" "$(mx_field s1 data rcpts)" "['ok@$S']"
	case_end

	case_begin smarthost-only-recipient-refused
	mx_reset s1
	sh_refused smarthost-only-recipient-refused dane "reject-all@$S" \
		"^550 5\\.1\\.1 <reject-all@$S>: Recipient address rejected: no such user$" tls=dane "mx_host=$TESTBED_MXHOST_MX1"
	check "s1: MAIL, refused RCPT, RCPT, DATA" \
		"$(mx_count s1 mail)/$(mx_count s1 rcpt-refused)/$(mx_count s1 rcpt)/$(mx_count s1 data)" 1/1/0/0
	case_end

	case_begin smarthost-first-mx-dead-next
	mx_reset s2
	sh_deliver smarthost-first-mx-dead-next dane s2 "rcpt@$TESTBED_MAIL_DOMAIN_MULTI" "mx_host=$TESTBED_MXHOST_MX2" \
		mx_preference=20 tls=dane depth=0 mx_failed.#=1 "mx_failed.0.host=$TESTBED_MXHOST_MX_DEAD" \
		mx_failed.0.preference=10 "mx_failed.0.addr=$TESTBED_MXHOST_ADDR_MX_DEAD:$SMTP_PORT" \
		"mx_failed.0.reason=cannot connect"
	case_end

	# [smtp] max_attempts = 1: the dead first MX was the one attempt; the second is never tried
	case_begin smarthost-max-attempts
	mx_reset s2
	sh_refused smarthost-max-attempts once "rcpt@$TESTBED_MAIL_DOMAIN_MULTI" "^4[0-9][0-9] 4\\." \
		"domain=$TESTBED_MAIL_DOMAIN_MULTI" mx_failed.#=1 "mx_failed.0.host=$TESTBED_MXHOST_MX_DEAD"
	nothing_at s2
	check "s2: connections" "$(mx_count s2 connect)" 0
	case_end

	case_begin smarthost-null-mx
	mx_reset s1
	sh_refused smarthost-null-mx dane "rcpt@$TESTBED_MAIL_DOMAIN_NULLMX" \
		"^556 5\\.1\\.10 daneproxy: .*null MX" "domain=$TESTBED_MAIL_DOMAIN_NULLMX" mx_host=null tls=null \
		"error=the domain accepts no mail (null MX)"
	never_connected s1
	case_end

	case_begin smarthost-no-such-domain
	sh_refused smarthost-no-such-domain dane "rcpt@$TESTBED_MAIL_DOMAIN_NX" "^550 5\\.1\\.2 daneproxy: .*" mx_host=null \
		"error=the domain does not exist"
	case_end

	case_begin smarthost-bogus-mx-defers
	sh_refused smarthost-bogus-mx-defers dane "rcpt@$TESTBED_MAIL_DOMAIN_BOGUS" "^451 4\\.4\\.3 daneproxy: .*" \
		mx_dnssec=bogus mx_host=null tls=null
	never_connected s1
	case_end

	case_begin smarthost-tlsa-mismatch-defers
	sh_refused smarthost-tlsa-mismatch-defers dane "rcpt@$TESTBED_MAIL_DOMAIN_MISMATCH" "^451 4\\.7\\.5 daneproxy: .*" \
		mx_host=null mx_preference=null tls=null "mx_failed.0.host=$TESTBED_MXHOST_MX_MISMATCH" "mx_failed.0.reason=DANE authentication failed" \
		"mx_failed.0.detail~TLSA mismatch"
	check "smm: connections" "$(mx_count smm connect)" 1
	nothing_at smm
	case_end

	case_begin smarthost-nostarttls-defers
	sh_refused smarthost-nostarttls-defers dane "rcpt@$TESTBED_MAIL_DOMAIN_SELFSIGNED" "^451 4\\.7\\.5 daneproxy: .*" \
		"mx_failed.0.reason=STARTTLS mandatory and not offered (downgrade refused)" mx_host=null tls=null
	check_true "the MX was asked (EHLO)" mx_saw snt ehlo
	nothing_at snt
	case_end

	case_begin smarthost-injection-defers
	sh_refused smarthost-injection-defers dane "rcpt@$TESTBED_MAIL_DOMAIN_TA" "^451 4\\.7\\.5 daneproxy: .*" \
		"mx_failed.0.reason=data after the 220 to STARTTLS (command injection)" mx_host=null tls=null
	check_true "the MX got STARTTLS" mx_saw sinj starttls
	check_true "no TLS with the injecting MX" mx_never sinj tls
	nothing_at sinj
	case_end

	case_begin smarthost-insecure-opportunistic
	mx_reset s1
	sh_deliver smarthost-insecure-opportunistic dane s1 "rcpt@$TESTBED_MAIL_DOMAIN_INSECURE" policy=dane \
		mx_dnssec=insecure tls=encrypt tlsa_dnssec=null tlsa=null depth=null "mx_host=$TESTBED_MXHOST_MX1"
	case_end

	case_begin smarthost-insecure-dane-only-defers
	mx_reset s1
	sh_refused smarthost-insecure-dane-only-defers only "rcpt@$TESTBED_MAIL_DOMAIN_INSECURE" "^451 4\\.7\\.5 daneproxy: .*" \
		policy=dane-only mx_dnssec=insecure mx_host=null
	never_connected s1
	case_end

	case_begin smarthost-encrypt-policy
	mx_reset s1
	sh_deliver smarthost-encrypt-policy enc s1 "rcpt@$S" policy=encrypt tls=encrypt tlsa_dnssec=null tlsa=null depth=null
	case_end

	case_begin smarthost-policy-rule-dane-only
	# [policy] rule: the NOTLSA domain is dane-only, whatever the listener says; no server needed: none is tried
	sh_refused smarthost-policy-rule-dane-only dane "rcpt@$TESTBED_MAIL_DOMAIN_NOTLSA" "^451 4\\.7\\.5 daneproxy: .*" \
		policy=dane-only "mx_failed.0.reason~^policy dane-only"
	case_end

	case_begin smarthost-policy-rule-pkix-encrypt
	mx_reset s1
	# [policy] rule pkix: SMTP has no PKIX (RFC 7672), so TLS is required and not authenticated
	sh_deliver smarthost-policy-rule-pkix-encrypt dane s1 "rcpt@$TESTBED_MAIL_DOMAIN_ALIAS" policy=encrypt tls=encrypt \
		tlsa_dnssec=null
	case_end

	# --- what the client's commands asked, honoured end to end or refused
	case_begin smarthost-8bitmime-mx-lacks-it
	printf 'Subject: 8bit\r\n\r\nGr\xc3\xbc\xc3\x9fe\r\n' >"$W/8bit.eml"
	raw smarthost-8bitmime-mx-lacks-it dane 'replies:1' \
		"send:EHLO client.test\\r\\nMAIL FROM:<a@client.test> BODY=8BITMIME\\r\\nRCPT TO:<r@$TESTBED_MAIL_DOMAIN_NOMX>\\r\\nDATA\\r\\n" \
		'replies:4' 'send:QUIT\r\n' 'replies:1'
	check "replies" "$(raw_codes smarthost-8bitmime-mx-lacks-it)" "220|250|250 2.1.0|554 5.6.3|554 5.5.1|221 2.0.0|"
	check_re "the refusal names the MX" "$(raw_replies smarthost-8bitmime-mx-lacks-it)" \
		"554 5\\.6\\.3 the destination MX $TESTBED_MAIL_DOMAIN_NOMX does not take 8BITMIME content"
	tx_expect smarthost-8bitmime-mx-lacks-it "$R_LPORT" result=refused recipients_refused=1 "mx_host=$TESTBED_MAIL_DOMAIN_NOMX"
	check_true "s8 was asked (EHLO)" mx_saw s8 ehlo
	nothing_at s8
	case_end

	case_begin smarthost-7bit-to-the-same-mx
	# the same MX takes the mail without BODY=8BITMIME: the refusal above was for 8BITMIME alone
	printf 'Subject: 7bit\r\n\r\nhello\r\n.dot\r\n' >"$W/7bit.eml"
	raw smarthost-7bit-to-the-same-mx dane 'replies:1' \
		"send:EHLO client.test\\r\\nMAIL FROM:<a@client.test>\\r\\nRCPT TO:<r@$TESTBED_MAIL_DOMAIN_NOMX>\\r\\nDATA\\r\\n" \
		'replies:4' "message:$W/7bit.eml" 'replies:1' 'send:QUIT\r\n' 'replies:1'
	check "replies" "$(raw_codes smarthost-7bit-to-the-same-mx)" "220|250|250 2.1.0|250 2.1.5|354|250 2.0.0|221 2.0.0|"
	delivered_at s8 "$W/7bit.eml"
	tx_expect smarthost-7bit-to-the-same-mx "$R_LPORT" result=delivered tls=dane "mx_host=$TESTBED_MAIL_DOMAIN_NOMX"
	case_end

	case_begin smarthost-8bitmime-passed-on
	mx_reset s1
	raw smarthost-8bitmime-passed-on dane 'replies:1' \
		"send:EHLO client.test\\r\\nMAIL FROM:<a@client.test> BODY=8BITMIME SIZE=100\\r\\nRCPT TO:<r@$S>\\r\\nDATA\\r\\n" \
		'replies:4' "message:$W/8bit.eml" 'replies:1' 'send:QUIT\r\n' 'replies:1'
	check "replies" "$(raw_codes smarthost-8bitmime-passed-on)" "220|250|250 2.1.0|250 2.1.5|354|250 2.0.0|221 2.0.0|"
	check "MAIL parameters at the MX" "$(mx_field s1 mail options)" "['SIZE=100', 'BODY=8BITMIME']"
	delivered_at s1 "$W/8bit.eml"
	tx_expect smarthost-8bitmime-passed-on "$R_LPORT" result=delivered
	case_end

	case_begin smarthost-size-param-too-large
	raw smarthost-size-param-too-large small 'replies:1' \
		"send:EHLO client.test\\r\\nMAIL FROM:<a@client.test> SIZE=$((SMALL_MAX + 1))\\r\\nMAIL FROM:<a@client.test> SIZE=$SMALL_MAX\\r\\nRSET\\r\\nQUIT\\r\\n" \
		'replies:5'
	check "replies" "$(raw_codes smarthost-size-param-too-large)" "220|250|552 5.3.4|250 2.1.0|250 2.0.0|221 2.0.0|"
	check_re "EHLO announced the maximum" "$(raw_replies smarthost-size-param-too-large)" "\\|250-SIZE $SMALL_MAX\\|"
	case_end

	case_begin smarthost-size-over-mx-limit
	mx_reset s1
	# the MX announces SIZE 10240000: a larger declared size is refused before any MAIL reaches it
	raw smarthost-size-over-mx-limit dane 'replies:1' \
		"send:EHLO client.test\\r\\nMAIL FROM:<a@client.test> SIZE=20000000\\r\\nRCPT TO:<r@$S>\\r\\nQUIT\\r\\n" 'replies:4'
	check "replies" "$(raw_codes smarthost-size-over-mx-limit)" "220|250|250 2.1.0|552 5.3.4|221 2.0.0|"
	check_re "the refusal says the MX's limit" "$(raw_replies smarthost-size-over-mx-limit)" "larger than the destination MX .* takes \\(10240000\\)"
	nothing_at s1
	tx_expect smarthost-size-over-mx-limit "$R_LPORT" result=refused recipients_refused=1
	case_end

	case_begin smarthost-content-too-large
	mx_reset s1
	{ head -c 30000 /dev/zero | tr '\0' 'x' | fold -w 70; echo; } | sed 's/$/\r/' >"$W/big.eml"
	raw smarthost-content-too-large small 'replies:1' \
		"send:EHLO client.test\\r\\nMAIL FROM:<a@client.test>\\r\\nRCPT TO:<r@$S>\\r\\nDATA\\r\\n" \
		'replies:4' "message:$W/big.eml" 'replies:1' 'send:QUIT\r\n' 'replies:1'
	check "replies" "$(raw_codes smarthost-content-too-large)" "220|250|250 2.1.0|250 2.1.5|354|552 5.3.4|221 2.0.0|"
	check_true "the MX session closed" wait_for 5 mx_settled s1
	check "s1: MAIL, DATA stored" "$(mx_count s1 mail)/$(mx_count s1 data)" 1/0
	tx_expect smarthost-content-too-large "$R_LPORT" result=refused "final_reply~^552 5\\.3\\.4"
	case_end

	case_begin smarthost-smuggling-refused
	mx_reset s1
	# one connection, three transactions, each with content an MX could read as two messages (sent as they are,
	# no dot-stuffing), then a clean one
	local tx="send:MAIL FROM:<a@client.test>\\r\\nRCPT TO:<r@$S>\\r\\nDATA\\r\\n"
	printf 'Subject: a\r\n\r\nfirst\n.\nMAIL FROM:<evil@x.test>\r\nlast\r\n.\r\n' >"$W/smuggle1"
	printf 'Subject: b\r\n\r\nfirst\r\n.\nRCPT TO:<evil@x.test>\r\nlast\r\n.\r\n' >"$W/smuggle2"
	printf 'Subject: c\r\n\r\nfirst\r\n.\rDATA\r\nlast\r\n.\r\n' >"$W/smuggle3"
	printf 'Subject: d\r\n\r\nclean\r\n' >"$W/clean.eml"
	raw smarthost-smuggling-refused dane 'replies:1' 'send:EHLO client.test\r\n' 'replies:1' \
		"$tx" 'replies:3' "raw:$W/smuggle1" 'replies:1' \
		"$tx" 'replies:3' "raw:$W/smuggle2" 'replies:1' \
		"$tx" 'replies:3' "raw:$W/smuggle3" 'replies:1' \
		"$tx" 'replies:3' "message:$W/clean.eml" 'replies:1' 'send:QUIT\r\n' 'replies:1'
	check "replies" "$(raw_codes smarthost-smuggling-refused)" \
		"220|250|250 2.1.0|250 2.1.5|354|554 5.6.11|250 2.1.0|250 2.1.5|354|554 5.6.11|250 2.1.0|250 2.1.5|354|554 5.6.11|250 2.1.0|250 2.1.5|354|250 2.0.0|221 2.0.0|"
	for m in 1 2 3; do
		tx_expect smarthost-smuggling-refused "$R_LPORT/$m" result=refused "final_reply~^554 5\\.6\\.11"
	done
	tx_expect smarthost-smuggling-refused "$R_LPORT/4" result=delivered
	wait_for 5 mx_settled s1
	check "messages at the MX" "$(mx_count s1 data)" 1
	delivered_at s1 "$W/clean.eml"
	check "the smuggled commands never reached the MX" "$(grep -c 'evil@' "$W/spool/s1.events")" 0
	case_end

	case_begin smarthost-pipelining-in-order
	mx_reset s1 s2
	printf 'Subject: pipelined\r\n\r\nbody\r\n' >"$W/pipe.eml"
	# everything up to DATA in one write, then the content, its end and QUIT in one write
	raw smarthost-pipelining-in-order dane 'replies:1' \
		"send:EHLO client.test\\r\\nMAIL FROM:<a@client.test>\\r\\nRCPT TO:<p1@$S>\\r\\nRCPT TO:<p2@$TESTBED_MAIL_DOMAIN_MULTI>\\r\\nRCPT TO:<reject-p3@$S>\\r\\nRCPT TO:<p4@$S>\\r\\nDATA\\r\\n" \
		'replies:7' "raw:$W/pipe.eml" \
		"send:.\\r\\nMAIL FROM:<a@client.test>\\r\\nRCPT TO:<p2@$TESTBED_MAIL_DOMAIN_MULTI>\\r\\nDATA\\r\\n" 'replies:4' \
		"raw:$W/pipe.eml" 'send:.\r\nQUIT\r\n' 'replies:2'
	# ... and the recipient of the other domain in a second transaction, on the same connection
	check "replies in order" "$(raw_codes smarthost-pipelining-in-order)" \
		"220|250|250 2.1.0|250 2.1.5|452 4.5.3|550 5.1.1|250 2.1.5|354|250 2.0.0|250 2.1.0|250 2.1.5|354|250 2.0.0|221 2.0.0|"
	delivered_at s1 "$W/pipe.eml"
	check "recipients of the message" "$(mx_field s1 data rcpts)" "['p1@$S', 'p4@$S']"
	tx_expect smarthost-pipelining-in-order "$R_LPORT/1" result=delivered recipients_accepted=2 recipients_refused=2 "domain=$S"
	delivered_at s2 "$W/pipe.eml"
	check "recipients of the second message" "$(mx_field s2 data rcpts)" "['p2@$TESTBED_MAIL_DOMAIN_MULTI']"
	tx_expect smarthost-pipelining-in-order "$R_LPORT/2" result=delivered "domain=$TESTBED_MAIL_DOMAIN_MULTI" \
		"mx_host=$TESTBED_MXHOST_MX2"
	check "MX sessions" "$(mx_count s1 connect)/$(mx_count s2 connect)" 1/1
	case_end

	case_begin smarthost-client-cut-mid-data
	mx_reset s1
	printf 'Subject: cut\r\n\r\nthe first half of a message\r\nand no end' >"$W/cut.eml"
	raw smarthost-client-cut-mid-data dane 'replies:1' \
		"send:EHLO client.test\\r\\nMAIL FROM:<a@client.test>\\r\\nRCPT TO:<r@$S>\\r\\nDATA\\r\\n" 'replies:4' "raw:$W/cut.eml" close
	tx_expect smarthost-client-cut-mid-data "$R_LPORT" result=aborted recipients_accepted=1 final_reply=null tls=dane
	check_true "the MX session closed" wait_for 5 mx_settled s1
	check "s1: MAIL, RCPT, DATA" "$(mx_count s1 mail)/$(mx_count s1 rcpt)/$(mx_count s1 data)" 1/1/0
	case_end

	case_begin smarthost-mx-drops-in-data
	mx_reset s1
	# the MX goes away while the client is still sending: a transient failure (4xx, the client's queue retries),
	# never a permanent refusal of the message
	printf 'Subject: dropped\r\n\r\nthe first line\r\n' >"$W/drop1"
	raw smarthost-mx-drops-in-data dane 'replies:1' \
		"send:EHLO client.test\\r\\nMAIL FROM:<a@client.test>\\r\\nRCPT TO:<drop-in-data@$S>\\r\\nDATA\\r\\n" 'replies:4' \
		"raw:$W/drop1" "until:$W/spool/s1.events:\"event\": \"close\"" 'send:the second line\r\n.\r\n' 'replies:1' \
		'send:QUIT\r\n' 'replies:1'
	check_re "replies" "$(raw_codes smarthost-mx-drops-in-data)" "^220\\|250\\|250 2\\.1\\.0\\|250 2\\.1\\.5\\|354\\|4[0-9][0-9] 4\\.[0-9.]+\\|221 2\\.0\\.0\\|$"
	check_true "the MX dropped the connection in the data" mx_saw s1 drop
	check "s1: messages" "$(mx_count s1 data)" 0
	tx_expect smarthost-mx-drops-in-data "$R_LPORT" result=deferred "final_reply~^4[0-9][0-9] 4\\."
	case_end

	case_begin smarthost-mx-drops-at-end
	mx_reset s1
	printf 'Subject: dropped at the end\r\n\r\nbody\r\n' >"$W/drop2"
	raw smarthost-mx-drops-at-end dane 'replies:1' \
		"send:EHLO client.test\\r\\nMAIL FROM:<a@client.test>\\r\\nRCPT TO:<drop-at-end@$S>\\r\\nDATA\\r\\n" 'replies:4' \
		"message:$W/drop2" 'replies:1' 'send:QUIT\r\n' 'replies:1'
	check "replies" "$(raw_codes smarthost-mx-drops-at-end)" "220|250|250 2.1.0|250 2.1.5|354|451 4.4.2|221 2.0.0|"
	check_true "the MX dropped the connection at the end of the data" mx_saw s1 drop
	check "s1: messages" "$(mx_count s1 data)" 0
	tx_expect smarthost-mx-drops-at-end "$R_LPORT" result=deferred "final_reply~^451 4\\.4\\.2"
	case_end

	# [smtp] reply_timeout and data_timeout: an MX that answers too late is a transient failure the client is told
	# about at once, never a wait as long as the MX's
	case_begin smarthost-reply-timeout
	mx_reset s1
	raw smarthost-reply-timeout slowrcpt 'replies:1' \
		"send:EHLO client.test\\r\\nMAIL FROM:<a@client.test>\\r\\nRCPT TO:<slow-rcpt@$S>\\r\\n" 'replies:3' \
		'send:QUIT\r\n' 'replies:1'
	check_re "replies" "$(raw_codes smarthost-reply-timeout)" "^220\\|250\\|250 2\\.1\\.0\\|4[0-9][0-9] 4\\.[0-9.]+\\|221 2\\.0\\.0\\|$"
	check_true "the MX held its RCPT reply" mx_saw s1 slow
	check "s1: messages" "$(mx_count s1 data)" 0
	case_end

	case_begin smarthost-data-timeout
	mx_reset s1
	printf 'Subject: slow\r\n\r\nbody\r\n' >"$W/slow.eml"
	raw smarthost-data-timeout slowdata 'replies:1' \
		"send:EHLO client.test\\r\\nMAIL FROM:<a@client.test>\\r\\nRCPT TO:<slow-at-end@$S>\\r\\nDATA\\r\\n" 'replies:4' \
		"message:$W/slow.eml" 'replies:1' 'send:QUIT\r\n' 'replies:1'
	check "replies" "$(raw_codes smarthost-data-timeout)" "220|250|250 2.1.0|250 2.1.5|354|451 4.4.2|221 2.0.0|"
	check_true "the MX held its reply to the end of data" mx_saw s1 slow
	tx_expect smarthost-data-timeout "$R_LPORT" result=deferred "final_reply~^451 4\\.4\\.2"
	case_end

	case_begin smarthost-client-gone-awaiting-mx
	mx_reset s1
	# the client leaves while the MX's reply to a RCPT is awaited, and right after its end of data
	raw smarthost-client-gone-awaiting-mx-rcpt dane 'replies:1' \
		"send:EHLO client.test\\r\\nMAIL FROM:<a@client.test>\\r\\nRCPT TO:<r1@$S>\\r\\n" 'replies:3' \
		"send:RCPT TO:<r2@$S>\\r\\n" close
	tx_expect smarthost-client-gone-awaiting-mx "$R_LPORT" result=aborted
	printf 'Subject: gone\r\n\r\nbody\r\n' >"$W/gone.eml"
	raw smarthost-client-gone-awaiting-mx-end dane 'replies:1' \
		"send:EHLO client.test\\r\\nMAIL FROM:<a@client.test>\\r\\nRCPT TO:<r3@$S>\\r\\nDATA\\r\\n" 'replies:4' \
		"message:$W/gone.eml" close
	# the MX may have taken the message (the client then sends it again: RFC 5321 6.1), the log says the client left
	tx_expect smarthost-client-gone-awaiting-mx "$R_LPORT" "result~^(aborted|delivered)$"
	check_true "the MX sessions closed" wait_for 5 mx_settled s1
	check "worker deaths, sanitizer reports" "$(grep -c -E 'killed by signal|exited with|AddressSanitizer|runtime error' "$W/proxy.err")" 0
	case_end

	case_begin smarthost-1mib-small-writes
	mx_reset s1
	{
		printf 'Subject: one MiB\r\n\r\n.starts with a dot\r\n..two\r\n.\r\n'
		head -c 786432 /dev/urandom | base64 -w 76 | sed 's/$/\r/'
	} >"$W/mib.eml"
	raw smarthost-1mib-small-writes dane --chunk 1400 'replies:1' \
		"send:EHLO client.test\\r\\nMAIL FROM:<a@client.test> SIZE=$(stat -c %s "$W/mib.eml")\\r\\nRCPT TO:<r@$S>\\r\\nDATA\\r\\n" \
		'replies:4' "message:$W/mib.eml" 'replies:1' 'send:QUIT\r\n' 'replies:1'
	check "replies" "$(raw_codes smarthost-1mib-small-writes)" "220|250|250 2.1.0|250 2.1.5|354|250 2.0.0|221 2.0.0|"
	delivered_at s1 "$W/mib.eml"
	tx_expect smarthost-1mib-small-writes "$R_LPORT" result=delivered "bytes~^10[0-9]{5}$"
	case_end

	case_begin smarthost-proxy-stayed-up
	# no worker died on the way, and none leaves anything behind (sanitizer reports, open handles)
	check_true "daneproxy is still running" alive "$PROXY_PID"
	proxy_stopped_clean
	case_end

	case_begin smarthost-client-gone-while-mx-opens
	# a daneproxy of its own (a crash here must not hide what the one before left behind)
	smarthost_proxy || { case_end; return; }
	mx_reset s1
	# the client leaves while the MX session is being opened (DNS, connect, STARTTLS): the open must be
	# cancelled, never answered into a connection that is gone; then the next client is served as usual
	raw smarthost-client-gone-while-mx-opens dane 'replies:1' \
		"send:EHLO client.test\\r\\nMAIL FROM:<a@client.test>\\r\\nRCPT TO:<gone@$S>\\r\\n" close
	tx_expect smarthost-client-gone-while-mx-opens "$R_LPORT" result=aborted
	sh_deliver smarthost-client-gone-while-mx-opens-next dane s1 "next@$S"
	check "the gone client's recipient at the MX" "$(grep -c '"rcpt": "gone@' "$W/spool/s1.events")" 0
	proxy_stopped_clean
	case_end
}

case $GROUP in
	route) group_route ;;
	out) PORT_BASE=9000; group_out ;;
	smarthost) PORT_BASE=6500; group_smarthost ;;
	*) echo "smtp: unknown group $GROUP" >&2; exit 2 ;;
esac
mail_finish
