#!/usr/bin/env bash
# postfix.sh - Postfix as the legacy MTA: a private Postfix instance relays through daneproxy's smarthost
# (relayhost = [127.0.0.1]:PORT, plaintext towards it) to aiosmtpd MX servers of the test bed's mail domains.
# Mail is submitted with swaks over SMTP and with Postfix's own sendmail; every case checks what reached the MX,
# daneproxy's transaction log line, and Postfix's view: its mail log (maillog_file, through postlogd) and its queue
# (postqueue -j).
#
# The instance is the test's own: config_directory, queue_directory and data_directory under the work directory,
# its smtpd on a free port of 127.0.0.1 only (inet_interfaces = loopback-only), no local delivery (mydestination
# empty), short retry times (queue_run_delay 1 s) so that a deferred recipient is tried again within the case. It
# is stopped and removed whatever happens (trap). The system's own Postfix, if any, is not touched.
#
# What "byte for byte" means here: Postfix adds exactly one header to a message that has From, Date and
# Message-ID, its Received: field, at the top. Each case asserts that field (its first line names the submitting
# client, the next names this Postfix with the queue id), cuts it off, and compares the rest with the message as
# submitted, byte for byte.
#
# usage: postfix.sh DANEPROXY TESTBED_ENV
# Runs as root (Postfix's master starts as root and gives up privileges to mail_owner); exits 77 (ctest: skipped)
# when not root or Debian's postfix package is not installed (sh .ci/install-deps). Holds the bed's SMTP port
# like smtp.sh (ctest RESOURCE_LOCK dnsbed_smtp_port). SMTP_KEEP=1 keeps the work directory.
# shellcheck disable=SC2317 # functions called through wait_for and CLEANUP_HOOKS
set -u
# shellcheck source=../lib/harness.bash
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.bash"
set -o pipefail

if [ $# -lt 2 ]; then
	echo "usage: $0 DANEPROXY TESTBED_ENV" >&2
	exit 2
fi
DANEPROXY=$(readlink -f "$1")
ENVFILE=$2
GROUP=postfix
HERE=$(cd "$(dirname "$0")" && pwd)
PATH=$PATH:/usr/sbin:/usr/lib/postfix/sbin

if [ "$(id -u)" -ne 0 ]; then
	echo "postfix: skipped: Postfix's master must start as root" >&2
	exit 77
fi
if ! command -v postfix >/dev/null || ! command -v postqueue >/dev/null || ! getent passwd postfix >/dev/null; then
	echo "postfix: skipped: Debian's postfix package is not installed (sh .ci/install-deps)" >&2
	exit 77
fi
# shellcheck source=mail.bash disable=SC1091
. "$HERE/mail.bash"
mail_setup postfix sendmail script
PORT_BASE=6500

# ---------------------------------------------------------------- the Postfix instance

PF=$W/postfix
PFCONF=$PF/etc
PFLOG=$PF/maillog

# postfix_conf SMARTHOST-PORT - main.cf and master.cf of the instance; PF_PORT its smtpd's port
postfix_conf() {
	free_port || return 1
	PF_PORT=$FREE
	mkdir -p "$PFCONF" "$PF/queue" "$PF/data" || return 1
	chown postfix: "$PF/data" || return 1
	# the postfix user must reach its queue under the (private) work directory
	chmod 755 "$RUN" "$W" "$PF"
	cat >"$PFCONF/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $PF/queue
data_directory = $PF/data
mail_owner = postfix
setgid_group = postdrop
syslog_name = postfix-daneproxy-test
maillog_file = $PFLOG
maillog_file_prefixes = $PF
myhostname = legacy.client.test
mydomain = client.test
myorigin = \$myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_peername_lookup = no
relayhost = [127.0.0.1]:$1
smtp_tls_security_level = none
smtpd_tls_security_level = none
disable_mime_output_conversion = yes
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
biff = no
EOF
	# no chroot: the daemons run in place, under the work directory
	cat >"$PFCONF/master.cf" <<EOF
127.0.0.1:$PF_PORT inet n - n - - smtpd
pickup     unix  n - n 60 1 pickup
cleanup    unix  n - n -  0 cleanup
qmgr       unix  n - n 300 1 qmgr
rewrite    unix  - - n -  - trivial-rewrite
bounce     unix  - - n -  0 bounce
defer      unix  - - n -  0 bounce
trace      unix  - - n -  0 bounce
verify     unix  - - n -  1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -  - proxymap
proxywrite unix  - - n -  1 proxymap
smtp       unix  - - n -  - smtp
relay      unix  - - n -  - smtp
showq      unix  n - n -  - showq
error      unix  - - n -  - error
retry      unix  - - n -  - error
discard    unix  - - n -  - discard
anvil      unix  - - n -  1 anvil
scache     unix  - - n -  1 scache
postlog    unix-dgram n - n - 1 postlogd
EOF
}

pf_master_pid() { tr -d ' \n' 2>/dev/null <"$PF/queue/pid/master.pid"; }
pf_ready() { [ -n "$(pf_master_pid)" ] && port_listening "$PF_PORT"; }

# postfix_start - start the instance, wait until its smtpd listens
postfix_start() {
	CLEANUP_HOOKS+=(postfix_stop)
	# postfix(1) reports errors on stderr only when it is a terminal: script(1) gives it one
	if ! script -qec "postfix -c $PFCONF check" /dev/null >"$W/postfix-check.out" 2>&1 ||
		! script -qec "postfix -c $PFCONF start" /dev/null >"$W/postfix-start.out" 2>&1; then
		setup_fail "Postfix did not start" "$W/postfix-check.out" "$W/postfix-start.out" "$PFLOG"
		return 1
	fi
	wait_for 15 pf_ready && return 0
	setup_fail "Postfix did not listen on 127.0.0.1:$PF_PORT" "$PFLOG"
	return 1
}

# postfix_stop - stop the instance (abort: no waiting for deliveries), its master and daemons gone for sure
postfix_stop() {
	local pid
	pid=$(pf_master_pid)
	[ -n "$pid" ] || return 0
	postfix -c "$PFCONF" abort >/dev/null 2>&1
	wait_for 5 not_alive "$pid" || { kill -KILL "$pid" 2>/dev/null; wait_for 2 not_alive "$pid"; }
	return 0
}

# pf_logged TEXT - Postfix's mail log holds TEXT; pf_wait_log SECONDS TEXT waits for it
pf_logged() { grep -qF -- "$1" "$PFLOG" 2>/dev/null; }
pf_wait_log() { wait_for "$1" pf_logged "$2"; }

# pf_swaks CASE TO MSGFILE - one message submitted to the instance's smtpd; PF_QID the queue id it answered
pf_swaks() {
	swaks --server "127.0.0.1:$PF_PORT" --from sender@client.test --to "$2" --helo client.test --data "@$3" \
		--timeout 10 >"$W/$1.swaks" 2>&1
	S_RC=$?
	PF_QID=$(sed -n -E 's/^<-  250 2\.0\.0 Ok: queued as ([0-9A-F]+)\r?$/\1/p' "$W/$1.swaks")
	[ -n "$PF_QID" ] || err "Postfix did not queue the message: $(grep '^<\*\*' "$W/$1.swaks" | head -n 1)"
}

# pf_message FILE - a test message (make_message) with a Date, so that Postfix adds nothing but its Received:
pf_message() {
	make_message "$1.body"
	{
		printf 'Date: Thu, 01 Jan 2026 00:00:00 +0000\r\n'
		cat "$1.body"
	} >"$1"
	rm -f "$1.body"
}

# mx_has_data MX N - the MX stored at least N messages
mx_has_data() { [ "$(mx_count "$1" data)" -ge "$2" ]; }

# relayed_intact CASE MX MSGFILE [N] - the MX's last message (or message N) is MSGFILE, as submitted over SMTP
# (so with the CRLF swaks ends it with; or, for sendmail, its LF lines as CRLF), below the one Received: field
# this Postfix added (from the SMTP client, or RECEIVED_RE when set: its folded lines joined by spaces); PF_MXQID
# is the MX's queue id of it ("queued as ...")
relayed_intact() {
	local cname=$1 mx=$2 want=$3 n=${4:-} file got
	local re=${RECEIVED_RE:-"^Received: from client\\.test \\(unknown \\[127\\.0\\.0\\.1\\]\\) +by legacy\\.client\\.test \\(Postfix\\) with ESMTP id $PF_QID"}
	if [ -n "$n" ]; then
		file=$W/spool/$mx.msg$n.eml
	else
		file=$(mx_field "$mx" data file)
	fi
	PF_MXQID=$(basename "$file" .eml | sed 's/\.msg//')
	"$PY" - "$file" "$W/$cname.received" "$W/$cname.relayed" <<'PYEOF'
import sys
data = open(sys.argv[1], "rb").read()
lines = data.split(b"\r\n")
i = 1
while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
    i += 1
open(sys.argv[2], "wb").write(b"\r\n".join(lines[:i]) + b"\r\n")
open(sys.argv[3], "wb").write(b"\r\n".join(lines[i:]))
PYEOF
	got=$(tr -d '\r' <"$W/$cname.received" | tr '\n\t' '  ')
	check_re "the header Postfix added" "$got" "$re"
	check "below it, the message as submitted (sha256)" "$(sha "$W/$cname.relayed")" "$(sha "$want")"
	check "over TLS" "$(mx_field "$mx" data tls)" True
}

# ---------------------------------------------------------------- cases

group_postfix() {
	local S=$TESTBED_MAIL_DOMAIN_SECURE M=$TESTBED_MAIL_DOMAIN_MISMATCH m n master
	mx_spawn s1 MX1 normal || return
	mx_spawn s2 MX2 normal || return
	mx_spawn smm MX_MISMATCH normal || return
	# shellcheck disable=SC2119 # no [policy] rules
	start_smarthost <<EOF || return
dane dane
EOF
	postfix_conf "${SP[dane]}" || { setup_fail "cannot write Postfix's configuration"; return; }
	postfix_start || return
	for m in s1 s2 smm; do
		mx_wait "$m" || return
	done

	case_begin postfix-relays-with-dane
	pf_message "$W/p1.eml"
	printf '\r\n' | cat "$W/p1.eml" - >"$W/p1.expected"
	pf_swaks postfix-relays-with-dane "rcpt@$S" "$W/p1.eml"
	check_true "the MX got the message" wait_for 20 mx_has_data s1 1
	relayed_intact postfix-relays-with-dane s1 "$W/p1.expected"
	check "envelope at the MX" "$(mx_field s1 data sender) $(mx_field s1 data rcpts)" "sender@client.test ['rcpt@$S']"
	check_true "Postfix logged it sent through the smarthost" pf_wait_log 5 \
		"$PF_QID: to=<rcpt@$S>, relay=127.0.0.1[127.0.0.1]:${SP[dane]}"
	check_re "Postfix's delivery status" "$(grep -F "$PF_QID: to=<rcpt@$S>" "$PFLOG" | tail -n 1)" \
		"dsn=2\\.0\\.0, status=sent \\(250 2\\.0\\.0 Ok: queued as $PF_MXQID\\)$"
	tx_find postfix-relays-with-dane "queued as $PF_MXQID\""
	tx_check postfix-relays-with-dane result=delivered tls=dane "tlsa=3 1 1 $SPKI" depth=0 "mx_host=$TESTBED_MXHOST_MX1" \
		"domain=$S" recipients_accepted=1 "client~^127\\.0\\.0\\.1:[0-9]+$"
	check_true "Postfix's queue is empty again" wait_for 5 pf_queue_empty
	case_end

	case_begin postfix-sendmail-submission
	# Postfix's own sendmail (pickup), LF line endings as a local program writes them
	printf 'From: app@client.test\nTo: rcpt@%s\nDate: Thu, 01 Jan 2026 00:00:00 +0000\nMessage-ID: <%s@client.test>\nSubject: from sendmail\n\n.a line with a dot\nlast\n' \
		"$S" "$RANDOM$RANDOM" >"$W/p2.txt"
	sed 's/$/\r/' "$W/p2.txt" >"$W/p2.expected"
	n=$(mx_count s1 data)
	sendmail -C "$PFCONF" -f app@client.test -i "rcpt@$S" <"$W/p2.txt" >"$W/p2.sendmail" 2>&1
	check "sendmail exit status" "$?" 0
	check_true "the MX got the message" wait_for 20 mx_has_data s1 $((n + 1))
	PF_QID=$(sed -n -E 's/.*postfix-daneproxy-test\/pickup\[[0-9]+\]: ([0-9A-F]+): uid=0 from=<app@client\.test>.*/\1/p' "$PFLOG" | tail -n 1)
	RECEIVED_RE="^Received: by legacy\\.client\\.test \\(Postfix, from userid 0\\) +id $PF_QID" \
		relayed_intact postfix-sendmail-submission s1 "$W/p2.expected" $((n + 1))
	tx_find postfix-sendmail-submission "queued as $PF_MXQID\""
	tx_check postfix-sendmail-submission result=delivered tls=dane
	case_end

	case_begin postfix-two-domains
	# One message for two domains: the smarthost takes one domain per transaction (452 4.5.3 for the other);
	# Postfix sends the other recipient again in a later transaction, and both arrive
	pf_message "$W/p3.eml"
	printf '\r\n' | cat "$W/p3.eml" - >"$W/p3.expected"
	n=$(mx_count s1 data)
	pf_swaks postfix-two-domains "rcpt@$S,rcpt@$TESTBED_MAIL_DOMAIN_MULTI" "$W/p3.eml"
	check_true "the message reached mx1" wait_for 20 mx_has_data s1 $((n + 1))
	check_true "the message reached mx2" wait_for 20 mx_has_data s2 1
	relayed_intact postfix-two-domains s1 "$W/p3.expected" $((n + 1))
	relayed_intact postfix-two-domains s2 "$W/p3.expected" 1
	check "recipients at mx1, mx2" "$(mx_field s1 data rcpts) $(mx_field s2 data rcpts)" \
		"['rcpt@$S'] ['rcpt@$TESTBED_MAIL_DOMAIN_MULTI']"
	check_true "Postfix was told 452 4.5.3 for one of them" pf_logged "said: 452 4.5.3 one destination domain per transaction"
	check_true "and then sent both" wait_for 5 pf_sent_both "$PF_QID" "rcpt@$S" "rcpt@$TESTBED_MAIL_DOMAIN_MULTI"
	case_end

	case_begin postfix-deferred-stays-queued
	# TLSA mismatch: daneproxy defers (451 4.7.5); Postfix keeps the message, the MX never gets MAIL FROM
	pf_message "$W/p4.eml"
	pf_swaks postfix-deferred-stays-queued "rcpt@$M" "$W/p4.eml"
	P4_QID=$PF_QID
	check_true "Postfix logged the deferral" pf_wait_log 20 "$P4_QID: to=<rcpt@$M>, relay=127.0.0.1[127.0.0.1]:${SP[dane]}"
	check_re "Postfix's delivery status" "$(grep -F "$P4_QID: to=<rcpt@$M>" "$PFLOG" | head -n 1)" \
		"dsn=4\\.7\\.5, status=deferred \\(host 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\] said: 451 4\\.7\\.5 daneproxy: "
	pf_queue_json
	check "in Postfix's queue" "$(pf_queue_field "$P4_QID" queue_name)" deferred
	check "its recipient" "$(pf_queue_field "$P4_QID" recipients.0.address)" "rcpt@$M"
	check_re "why it waits" "$(pf_queue_field "$P4_QID" recipients.0.delay_reason)" "451 4\\.7\\.5 daneproxy: "
	check "smm: MAIL, RCPT, DATA" "$(mx_count smm mail)/$(mx_count smm rcpt)/$(mx_count smm data)" 0/0/0
	tx_find postfix-deferred-stays-queued "\"domain\": \"$M\""
	tx_check postfix-deferred-stays-queued result=deferred recipients_accepted=0 \
		"mx_failed.0.reason=DANE authentication failed"
	case_end

	case_begin postfix-deferred-domain-does-not-block-another
	# A message for the failing domain and a good one, the failing one first (Postfix sends recipients sorted,
	# mail-mismatch before mail-secure): the good domain's recipient must not wait for the failing one
	pf_message "$W/p5.eml"
	printf '\r\n' | cat "$W/p5.eml" - >"$W/p5.expected"
	n=$(mx_count s1 data)
	pf_swaks postfix-deferred-domain-does-not-block-another "rcpt@$S,rcpt@$M" "$W/p5.eml"
	if wait_for 10 mx_has_data s1 $((n + 1)); then
		relayed_intact postfix-deferred-domain-does-not-block-another s1 "$W/p5.expected" $((n + 1))
	else
		err "rcpt@$S was not delivered in 10 s: $(grep -F "$PF_QID: to=<rcpt@$S>" "$PFLOG" | tail -n 1 | sed 's/.*status=//')"
	fi
	check "smm: MAIL, RCPT, DATA" "$(mx_count smm mail)/$(mx_count smm rcpt)/$(mx_count smm data)" 0/0/0
	case_end

	case_begin postfix-proxy-stayed-up
	check_true "daneproxy is still running" alive "$PROXY_PID"
	master=$(pf_master_pid)
	postfix_stop
	check_true "Postfix's master ($master) is gone" not_alive "${master:-0}"
	proxy_stopped_clean
	case_end
}

# pf_queue_json - the instance's queue as postqueue -j lines, into $W/queue.json
pf_queue_json() { postqueue -c "$PFCONF" -j >"$W/queue.json" 2>"$W/queue.err"; }
pf_queue_empty() { pf_queue_json && [ ! -s "$W/queue.json" ]; }
# pf_queue_field QID KEY - KEY (a path: recipients.0.address) of the queued message QID
pf_queue_field() {
	"$PY" - "$W/queue.json" "$1" "$2" <<'PYEOF'
import json, sys
for line in open(sys.argv[1]):
    if not line.strip():
        continue
    m = json.loads(line)
    if m.get("queue_id") != sys.argv[2]:
        continue
    v = m
    try:
        for part in sys.argv[3].split("."):
            v = v[int(part)] if isinstance(v, list) else v[part]
    except (KeyError, IndexError, ValueError):
        v = "<absent>"
    print(v)
    break
else:
    print("<not queued>")
PYEOF
}
# pf_sent_both QID RCPT... - Postfix logged status=sent for each recipient of QID
pf_sent_both() {
	local qid=$1 r
	shift
	for r in "$@"; do
		grep -F "$qid: to=<$r>" "$PFLOG" 2>/dev/null | grep -q 'status=sent' || return 1
	done
}

group_postfix
mail_finish
