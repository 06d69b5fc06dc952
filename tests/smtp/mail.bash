# mail.bash - what the mail suites share (smtp.sh, postfix.sh): the test bed's mail cases, aiosmtpd MX servers
# (mx_server.py) and what they recorded, test messages, swaks and raw_client.py as clients, daneproxy started with
# smarthost listeners and its per-transaction log lines. Sourced after tests/lib/harness.bash, by a suite that has
# set DANEPROXY, ENVFILE, GROUP and HERE; mail_setup NAME [TOOL...] checks what is needed, loads the bed's env
# file and makes the work directory ($RUN, $W = $RUN/$GROUP); mail_finish prints the count and exits.
# shellcheck shell=bash

if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=$(command -v python3 || true); fi
export LC_ALL=C

# mail_setup NAME [TOOL...] - NAME is the suite's in messages; TOOLs are required besides swaks, setsid, sha256sum
mail_setup() {
	local name=$1 tool k
	shift
	SUITE=$name
	[ -x "$DANEPROXY" ] || { echo "$name: $DANEPROXY is not executable" >&2; exit 2; }
	[ -r "$ENVFILE" ] || { echo "$name: no test bed env file $ENVFILE (is the dnsbed fixture running?)" >&2; exit 2; }
	for tool in swaks setsid sha256sum "$@"; do
		command -v "$tool" >/dev/null || { echo "$name: $tool is required (sh .ci/install-deps)" >&2; exit 2; }
	done
	[ -n "$PY" ] && "$PY" -c 'import aiosmtpd' 2>/dev/null ||
		{ echo "$name: python3-aiosmtpd is required (sh .ci/install-deps)" >&2; exit 2; }
	# shellcheck disable=SC1090
	. "$ENVFILE"
	for k in TESTBED_RESOLVER TESTBED_TRUST_ANCHOR TESTBED_SMTP_PORT TESTBED_CHAIN TESTBED_LEAF_KEY \
		TESTBED_SELFSIGNED_CERT TESTBED_SELFSIGNED_KEY TESTBED_LEAF_SPKI_SHA256 TESTBED_MXHOST_MX1 TESTBED_MAIL_CASES; do
		[ -n "${!k:-}" ] || { echo "$name: $ENVFILE lacks $k (a bed from before the mail cases?)" >&2; exit 2; }
	done
	SMTP_PORT=$TESTBED_SMTP_PORT
	# shellcheck disable=SC2034 # the suites' cases use it
	SPKI=$TESTBED_LEAF_SPKI_SHA256

	RUN=$(mktemp -d "${TMPDIR:-/tmp}/daneproxy-$name.XXXXXX")
	W=$RUN/$GROUP
	mkdir -p "$W/spool" "$W/state"
	RESULTS=$RUN/results
	: >"$RESULTS"
	PROXY_LOG=$W/proxy.log
}

# mail_finish - stop everything, print the count; exit 1 on any failure (or none passed). The work directory is
# removed unless a case failed or SMTP_KEEP=1.
mail_finish() {
	local npass nfail
	cleanup
	npass=$(grep -c '^pass ' "$RESULTS")
	nfail=$(grep -c '^fail ' "$RESULTS")
	echo "$SUITE $GROUP: work directory $RUN"
	echo "$npass passed, $nfail failed"
	if [ "$nfail" -eq 0 ] && [ "$npass" -gt 0 ] && [ "${SMTP_KEEP:-0}" != 1 ]; then
		rm -rf "$RUN"
	fi
	[ "$nfail" -eq 0 ] && [ "$npass" -gt 0 ]
	exit
}

# ---------------------------------------------------------------- ports and processes

# free_port, stop_pid, cleanup and CLEANUP_HOOKS come from tests/lib/harness.bash, which reads these
# shellcheck disable=SC2034
PORT_BASE=8200
# shellcheck disable=SC2034
PORT_SPAN=1500
# shellcheck disable=SC2034
STOP_WAIT=3
trap cleanup EXIT
trap 'exit 130' INT TERM

# mxhost ID - the name and address of a bed MX host: MXNAME, MXADDR
mxhost() {
	local n="TESTBED_MXHOST_$1" a="TESTBED_MXHOST_ADDR_$1"
	MXNAME=${!n:-}
	MXADDR=${!a:-}
	[ -n "$MXNAME" ] && [ -n "$MXADDR" ] || { echo "$SUITE: the bed has no MX host $1" >&2; return 1; }
}

# mx_start NAME HOST-ID MODE [CERT KEY] - an aiosmtpd MX on HOST-ID's address and the SMTP port, events in
# $W/spool/NAME.events; waits until it listens. MXPID[NAME] is its pid.
declare -A MXPID=()
mx_ready() { [ -e "$W/mx-$1.ready" ]; }
mx_ready_or_dead() { mx_ready "$1" || ! alive "${MXPID[$1]}"; }
mx_start() {
	mx_spawn "$@" && mx_wait "$1"
}
# mx_spawn NAME HOST-ID MODE [CERT KEY] - start it without waiting (several start at once); mx_wait NAME - wait
mx_spawn() {
	local name=$1 id=$2 mode=$3 cert=${4:-$TESTBED_CHAIN} key=${5:-$TESTBED_LEAF_KEY}
	mxhost "$id" || return 1
	rm -f "$W/mx-$name.ready"
	spawn "mx-$name" "$PY" "$HERE/mx_server.py" --listen "$MXADDR:$SMTP_PORT" --name "$name" --spool "$W/spool" \
		--cert "$cert" --key "$key" --mode "$mode" --ready "$W/mx-$name.ready"
	MXPID[$name]=$SPAWNED
}
mx_wait() {
	local name=$1
	wait_for 10 mx_ready_or_dead "$name"
	mx_ready "$name" && return 0
	setup_fail "MX $name did not start" "$W/mx-$name.err"
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

proxy_ready() { [ "$(grep -c '^daneproxy: ready' "$W/proxy.out" 2>/dev/null)" -ge "$1" ]; }
proxy_ready_or_dead() { proxy_ready "$1" || ! alive "$PROXY_PID"; }

# ---------------------------------------------------------------- daneproxy for the mail suites

# proxy_ini_head [PROXY-LINE...] - the [proxy], [resolver] and [connect] sections every daneproxy of these suites
# starts with: its HTTP listener on a port of its own (taken here, in this shell: in $(...) it would not be
# recorded as taken), the log, short timeouts, the bed's resolver; each PROXY-LINE is one more [proxy] key
proxy_ini_head() {
	local line
	free_port || return 1
	printf '[proxy]\nlisten = 127.0.0.1:%s\nlog = %s\nconnect_timeout = 5s\nhandshake_timeout = 5s\n' "$FREE" "$PROXY_LOG"
	for line in "$@"; do
		printf '%s\n' "$line"
	done
	printf '\n[resolver]\nupstream = %s\ntrust_anchor = %s\n\n[connect]\nstate_dir = %s\n' \
		"$TESTBED_RESOLVER" "$TESTBED_TRUST_ANCHOR" "$W/state"
}

# proxy_start INI READY-LINES WHAT - spawn daneproxy on INI (PROXY_PID) and wait for its READY-LINES "ready" lines;
# a setup failure naming WHAT when it does not get there
proxy_start() {
	spawn proxy "$DANEPROXY" -c "$1"
	PROXY_PID=$SPAWNED
	wait_for 15 proxy_ready_or_dead "$2"
	proxy_ready "$2" && return 0
	setup_fail "daneproxy did not start its $3" "$W/proxy.out" "$W/proxy.err"
	return 1
}

# ---------------------------------------------------------------- the smarthost

# start_smarthost [RULE...] <LISTENERS - one daneproxy (workers = 1) with an [smtp NAME] listener per line of
# standard input, "NAME POLICY [KEY = VALUE]" (EHLO name smarthost.client.test, the bed's SMTP port as mx_port),
# and "[policy] rule = RULE" for each argument; SP[NAME] their ports
declare -A SP=()
start_smarthost() {
	local ini=$W/proxy.ini name policy extra rule n=0
	{
		proxy_ini_head "workers = 1" || return 1
		printf '\n[policy]\n'
		for rule in "$@"; do
			printf 'rule = %s\n' "$rule"
		done
		while read -r name policy extra; do
			free_port || return 1
			SP[$name]=$FREE
			printf '\n[smtp %s]\nlisten = 127.0.0.1:%s\nhelo = smarthost.client.test\nmx_port = %s\npolicy = %s\n' \
				"$name" "$FREE" "$SMTP_PORT" "$policy"
			[ -z "$extra" ] || printf '%s\n' "$extra"
			n=$((n + 1))
		done
	} >"$ini" || return 1
	proxy_start "$ini" $((n + 1)) smarthosts
}

# mx_settled NAME - every connection the MX took is closed (a late QUIT of the last case is not this case's)
mx_settled() { [ "$(grep -c '"event": "connect"' "$W/spool/$1.events")" == "$(grep -c '"event": "close"' "$W/spool/$1.events")" ]; }
# mx_reset NAME... - settle, then forget the MX's events: what it logs next belongs to the case that follows
mx_reset() {
	local mx
	for mx in "$@"; do
		wait_for 5 mx_settled "$mx" || note "$mx: a connection still open before the case"
		: >"$W/spool/$mx.events"
	done
}
mx_count() { grep -c "\"event\": \"$2\"" "$W/spool/$1.events" 2>/dev/null; }

# tx_get CASE PORT [N] - the Nth (default: last) transaction line of the client at PORT, into $W/CASE.tx
# has_txline PORT N - at least N transaction lines of that client
has_txline() {
	[ "$(grep -F '"event": "transaction"' "$PROXY_LOG" 2>/dev/null | grep -cF "\"client\": \"127.0.0.1:$1\"")" -ge "$2" ]
}
tx_get() {
	local cname=$1 port=$2 nth=${3:-}
	: >"$W/$cname.tx"
	wait_for 5 has_txline "$port" "${nth:-1}" || return 1
	if [ -n "$nth" ]; then
		grep -F '"event": "transaction"' "$PROXY_LOG" | grep -F "\"client\": \"127.0.0.1:$port\"" | sed -n "${nth}p"
	else
		grep -F '"event": "transaction"' "$PROXY_LOG" | grep -F "\"client\": \"127.0.0.1:$port\"" | tail -n 1
	fi >"$W/$cname.tx"
}

# tx_expect CASE PORT[/N] key=value|key~regex ... - check the transaction line (tx_get); keys may be paths
# (mx_failed.0.host), "KEY.#" is a list's length; null, true, false as in JSON
tx_expect() {
	local cname=$1 port=${2%/*} nth=""
	[[ $2 == */* ]] && nth=${2#*/}
	shift 2
	tx_get "$cname" "$port" "$nth"
	if [ ! -s "$W/$cname.tx" ]; then
		err "no transaction log line for client port $port"
		return
	fi
	tx_check "$cname" "$@"
}

# tx_find CASE TEXT - the last transaction line holding TEXT (a client whose port is not known: Postfix), into
# $W/CASE.tx; waits for it
has_tx_with() { grep -F '"event": "transaction"' "$PROXY_LOG" 2>/dev/null | grep -qF -- "$1"; }
tx_find() {
	: >"$W/$1.tx"
	wait_for 5 has_tx_with "$2" || return 1
	grep -F '"event": "transaction"' "$PROXY_LOG" | grep -F -- "$2" | tail -n 1 >"$W/$1.tx"
}

# tx_check CASE key=value|key~regex ... - check $W/CASE.tx as tx_expect does
tx_check() {
	local cname=$1 line
	shift
	if [ ! -s "$W/$cname.tx" ]; then
		err "no transaction log line"
		return
	fi
	while IFS= read -r line; do
		err "log $line"
	done < <("$PY" - "$W/$cname.tx" "$@" <<'PYEOF'
import json, re, sys
tx = json.loads(open(sys.argv[1]).read())
def show(v):
    if v is None: return "null"
    if isinstance(v, bool): return "true" if v else "false"
    if isinstance(v, (list, dict)): return json.dumps(v)
    return str(v)
for spec in sys.argv[2:]:
    m = re.match(r"^([a-z_.0-9#]+)([=~])(.*)$", spec, re.S)
    if not m:
        print("bad expectation " + spec); continue
    key, op, want = m.groups()
    v = tx
    try:
        for part in key.split("."):
            v = len(v) if part == "#" else v[int(part)] if isinstance(v, list) else v[part]
        got = show(v)
    except (KeyError, IndexError, ValueError, TypeError):
        got = "<absent>"
    if (op == "=" and got != want) or (op == "~" and not re.search(want, got)):
        print("%s: got '%s', want %s" % (key, got, "'%s'" % want if op == "=" else "/%s/" % want))
PYEOF
)
	[ ${#CASE_ERRS[@]} -eq 0 ] || note "transaction: $(cat "$W/$cname.tx")"
}

# conn_line PORT - the connection's own log line (no "event"), once it is written
has_connline() { grep -F "\"client\": \"127.0.0.1:$1\"" "$PROXY_LOG" 2>/dev/null | grep -vqF '"event"'; }
# shellcheck disable=SC2034 # CONNLINE is the caller's
conn_line() {
	CONNLINE=
	wait_for 5 has_connline "$1" && CONNLINE=$(grep -F "\"client\": \"127.0.0.1:$1\"" "$PROXY_LOG" | grep -vF '"event"' | tail -n 1)
}

# raw CASE LISTENER [--chunk N] STEP... - raw_client.py against a smarthost; its transcript in $W/CASE.raw,
# R_LPORT the client port
raw() {
	local cname=$1 l=$2
	shift 2
	free_port || return 1
	R_LPORT=$FREE
	"$PY" "$HERE/raw_client.py" --connect "127.0.0.1:${SP[$l]}" --local-port "$R_LPORT" "$@" >"$W/$cname.raw" 2>&1 ||
		err "raw_client failed: $(tail -n 2 "$W/$cname.raw" | tr '\n' ' ')"
}
# raw_replies CASE - the reply lines the raw client got, "|"-separated
raw_replies() { sed -n 's/^<- //p' "$W/$1.raw" | tr '\n' '|'; }
# raw_codes CASE - the last line of each reply: "code enhanced" ("220" alone for the greeting)
raw_codes() { sed -n -E 's/^<- ([0-9]{3})( ([0-9]\.[0-9]+\.[0-9]+))?( .*)?$/\1 \3/p' "$W/$1.raw" | sed 's/ $//' | tr '\n' '|'; }

# delivered_at MX EXPECTED-FILE - the MX's last message is EXPECTED-FILE, byte for byte, received over TLS
delivered_at() {
	local mx=$1 want
	want=$(sha "$2")
	check "message at $mx (sha256)" "$(mx_field "$mx" data sha256)" "$want"
	check "the message $mx stored" "$(sha "$(mx_field "$mx" data file)")" "$want"
	check "the message went over TLS" "$(mx_field "$mx" data tls)" "${3:-True}"
}

# stuffed_size FILE - the octets of FILE as content on the wire: dot-stuffed, without the end of data
stuffed_size() { echo $(($(stat -c %s "$1") + $(grep -c '^\.' "$1"))); }

# sh_deliver CASE LISTENER MX TO [TX-EXPECTATIONS...] - swaks sends a fresh message to TO (comma-separated) through
# the smarthost LISTENER: the client gets the MX's own 250, the message reaches MX intact, the log says delivered
sh_deliver() {
	local cname=$1 l=$2 mx=$3 to=$4 msg=$W/$1.eml
	shift 4
	make_message "$msg"
	printf '\r\n' | cat "$msg" - >"$msg.expected"
	swaks_send "$cname" "${SP[$l]}" "$to" "$msg"
	check "swaks exit status" "$S_RC" 0
	check_true "the client got the MX's 250 to its end of data" grep -q "^<-  250 2.0.0 Ok: queued as ${mx}[0-9]" "$W/$cname.swaks"
	delivered_at "$mx" "$msg.expected"
	tx_expect "$cname" "$S_LPORT" result=delivered error=null "final_reply~^250 2.0.0 Ok: queued as ${mx}[0-9]+$" \
		"client=127.0.0.1:$S_LPORT" "bytes=$(stuffed_size "$msg.expected")" "$@"
}

# sh_refused CASE LISTENER TO REPLY-REGEX [TX-EXPECTATIONS...] - the one recipient is answered REPLY-REGEX (the
# whole line swaks saw), nothing else is answered to it, no DATA; the transaction is logged as its reply says
sh_refused() {
	local cname=$1 l=$2 to=$3 want=$4 msg=$W/$1.eml result
	shift 4
	make_message "$msg"
	swaks_send "$cname" "${SP[$l]}" "$to" "$msg"
	# lines: the greeting, five of EHLO, MAIL, then RCPT
	check_re "the reply to RCPT" "$(saw_lines "$cname" | sed -n 8p)" "$want"
	check_true "no DATA was sent" bash -c "! grep -q '^ -> DATA' '$W/$cname.swaks'"
	case "$want" in ^4*) result=deferred ;; *) result=refused ;; esac
	tx_expect "$cname" "$S_LPORT" "result=$result" recipients_accepted=0 recipients_refused=1 final_reply=null bytes=0 "$@"
}

# nothing_at MX... - the MX saw no transaction (MAIL, RCPT, DATA), and stored nothing
nothing_at() {
	local mx
	for mx in "$@"; do
		check "$mx: MAIL, RCPT, DATA" "$(mx_count "$mx" mail)/$(mx_count "$mx" rcpt)/$(mx_count "$mx" data)" 0/0/0
	done
}
# proxy_stopped_clean - SIGTERM: daneproxy ends gracefully within 15 s, and its stderr shows no worker that died, no
# sanitizer report (leaks show at exit under ASan) and no libuv handle left open at a worker's end
proxy_stopped_clean() {
	kill -TERM "$PROXY_PID" 2>/dev/null
	check_true "daneproxy ended within 15 s of SIGTERM" wait_for 15 not_alive "$PROXY_PID"
	stop_pid "$PROXY_PID"
	check "worker deaths, sanitizer reports, loops not closed" "$(grep -E \
		'killed by signal|exited with|AddressSanitizer|runtime error|LeakSanitizer|not closed cleanly' \
		"$W/proxy.err" | head -n 3 | tr '\n' '|')" ""
}

# never_connected MX... - the MX saw not even a connection
never_connected() {
	local mx
	for mx in "$@"; do
		check "$mx: connections" "$(mx_count "$mx" connect)" 0
	done
}
