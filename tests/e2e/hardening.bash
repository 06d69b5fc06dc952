# hardening.bash - the regression tests of issue 9 (what an attack on the running proxy found), sourced by e2e.sh.
# Each case reproduces one finding through the real daemon, real origins (nginx) and hostile clients (attack.py,
# e2e_helper.py raw) and checks the client's answer, the proxy's log line and what reached the origin.
#   group hardening         findings 1-8, 9, 12 (run time), 14 (messages): requests, tunnels and ClientHellos
#   group hardening_daemon  findings 10-14: hostile files, dual-stack listener, self-loops in -t, signals, state dir
# shellcheck shell=bash

ATTACK=$HERE/attack.py
attack() { "$PY" "$ATTACK" "$@"; }

# fd_count PID - open descriptors of a process and its children (the daemon's supervisor and its workers)
fd_count() {
	local p n=0 kids
	kids=$(pgrep -P "$1" 2>/dev/null | tr '\n' ' ')
	for p in "$1" $kids; do
		n=$((n + $(find "/proc/$p/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)))
	done
	echo "$n"
}
# fds_back PID N - the process has N descriptors or fewer (polled by wait_for)
fds_back() { [ "$(fd_count "$1")" -le "$2" ]; }

# raw_case NAME PROXY FILE STATUS [MARK] - send FILE as one request, expect STATUS with Proxy-Status
# http_request_error (4xx/5xx) and, when MARK is given, the origin never saw "c=MARK".
raw_case() {
	local name=$1 proxy=$2 file=$3 want=$4 mark=${5:-} out
	case_begin "$name"
	out=$(raw 127.0.0.1 "${PPORT[$proxy]}" --send "$file" --out "$W/$name.resp" --timeout 10)
	check_re "status line" "$(head -n 1 "$W/$name.resp" | tr -d '\r')" "^HTTP/1.1 $want "
	check_re "Proxy-Status" "$(header "$W/$name.resp" Proxy-Status)" '^daneproxy; error=http_request_error; details="[^"]+"'
	check "connection closed" "$(pyjson "$out" 'j["eof"] or j["reset"]')" true
	if [ -n "$mark" ] && grep -q "c=$mark" "$ORIGIN_LOG" 2>/dev/null; then
		err "the origin received the request (c=$mark)"
	fi
	get_logline "$W/$proxy.log" "$(pyjson "$out" 'j["local_port"]')"
	expect_log "$LOGLINE" "status=$want" error=http_request_error
	case_end
}

group_hardening() {
	local FP out pid base i
	PORT_BASE=15000
	make_content
	free_port; FP=$FREE
	nginx_start hard "$FP" "TLSv1.2 TLSv1.3" hard-origin || return
	ORIGIN_LOG=${NGX_LOG[hard]}
	local OK="https://www.dane.test:$FP/hello"
	# HA: the bed's CA as PKIX store (no TLSA at FP: PKIX fallback), CONNECT termination, test ports allowed.
	http_proxy HA --ca-file "$TESTBED_CA_CERT" --state-dir "$W/state"
	# HB: the same with a limit of 5 connections.
	http_proxy HB --ca-file "$TESTBED_CA_CERT" --state-dir "$W/state-b" --max-connections 5
	# HD: default ports (443, 465, 993, 995, 8443) only.
	free_port || return
	PPORT[HD]=$FREE
	spawn HD "$DANEPROXY" --listen "127.0.0.1:$FREE" --resolver "$TESTBED_RESOLVER" --trust-anchor "$TESTBED_TRUST_ANCHOR" \
		--ca-file "$TESTBED_CA_CERT" --state-dir "$W/state-d" --log "$W/HD.log"
	PPIDOF[HD]=$SPAWNED
	# HR: a dane-only rule for one name.
	free_port || return
	PPORT[HR]=$FREE
	printf '[proxy]\nlisten = 127.0.0.1:%s\nports = %s\nlog = %s\n[connect]\nstate_dir = %s\n[policy]\nca_file = %s\nrule = notlsa.dane.test dane-only\n' \
		"$FREE" "$TEST_PORTS" "$W/HR.log" "$W/state-r" "$TESTBED_CA_CERT" >"$W/hr.ini"
	spawn HR "$DANEPROXY" -c "$W/hr.ini" --resolver "$TESTBED_RESOLVER" --trust-anchor "$TESTBED_TRUST_ANCHOR"
	PPIDOF[HR]=$SPAWNED
	for i in HA HB HD HR; do await_proxy "$i" 1 || return; done
	t_req HA baseline "$OK?c=baseline" 200 hard-origin auth=pkix

	# --- finding 1: GET (origin kept alive) then CONNECT on one connection strands the kept origin
	case_begin get-then-connect-no-leak
	pid=${PPIDOF[HA]}
	base=$(fd_count "$pid")
	out=$(attack getconnect 127.0.0.1 "${PPORT[HA]}" --get "$OK?c=getconnect" --connect "www.dane.test:$FP" --n 30)
	check "statuses" "$(pyjson "$out" 'sorted(set(map(tuple, j["statuses"])))')" "[[200, 200]]"
	wait_for 5 fds_back "$pid" "$base" || err "the proxy holds $(($(fd_count "$pid") - base)) more descriptors than before 30 GET+CONNECT pairs"
	case_end

	# --- finding 2: a client that sends part of a body and goes away must not hold a connection slot
	case_begin client-fin-mid-body
	pid=${PPIDOF[HB]}
	base=$(fd_count "$pid")
	out=$(attack midbody 127.0.0.1 "${PPORT[HB]}" --url "https://www.dane.test:$FP/echo?c=midbody" --n 5)
	# The slots must be free at once (the old proxy held them until idle_timeout, 5 minutes): a request within a
	# second gets through.
	midbody_ok() { req midbody-after HB "$OK?c=midbody-after" --max-time 5; [ "$R_CODE" = 200 ]; }
	wait_for 1 midbody_ok
	check "a request after 5 abandoned uploads (max_connections 5)" "$R_CODE" 200
	wait_for 5 fds_back "$pid" "$base" || err "the proxy holds $(($(fd_count "$pid") - base)) more descriptors after the abandoned uploads"
	get_logline "$W/HB.log" "$(pyjson "$out" 'j["local_ports"][0]')"
	expect_log "$LOGLINE" close=client_closed
	case_end

	# --- finding 3: Connection-listed framing fields would smuggle a second request to the origin
	local smuggled="GET /SMUGGLED HTTP/1.1\r\nHost: evil.example\r\n\r\n"
	printf "POST https://www.dane.test:$FP/echo?c=smuggle-cl HTTP/1.1\r\nHost: www.dane.test\r\nConnection: content-length\r\nContent-Length: 46\r\n\r\n$smuggled" >"$W/smuggle-cl"
	printf "POST https://www.dane.test:$FP/echo?c=smuggle-te HTTP/1.1\r\nHost: www.dane.test\r\nConnection: transfer-encoding\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n$smuggled" >"$W/smuggle-te"
	printf "GET https://www.dane.test:$FP/hello?c=smuggle-host HTTP/1.1\r\nHost: www.dane.test\r\nConnection: keep-alive, Host\r\n\r\n" >"$W/smuggle-host"
	for i in cl te host; do raw_case "smuggling-connection-$i" HA "$W/smuggle-$i" 400 "smuggle-$i"; done
	case_begin smuggling-origin-saw-nothing
	grep -q SMUGGLED "$ORIGIN_LOG" && err "the origin received the smuggled request"
	case_end

	# --- finding 4: framing is validated before the head goes upstream
	printf "POST https://www.dane.test:$FP/echo?c=te-fold HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n" >"$W/te-fold"
	printf "POST https://www.dane.test:$FP/echo?c=te-x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" >"$W/te-x"
	printf "POST https://www.dane.test:$FP/echo?c=te-identity HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" >"$W/te-identity"
	printf "POST https://www.dane.test:$FP/echo?c=te-twice HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" >"$W/te-twice"
	printf "POST https://www.dane.test:$FP/echo?c=te-overflow HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nabc\r\n0\r\n\r\n" >"$W/te-overflow"
	printf "GET https://www.dane.test:$FP/hello?c=fold HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n" >"$W/fold"
	for i in te-fold te-x te-identity te-twice te-overflow fold; do raw_case "framing-$i" HA "$W/$i" 400 "$i"; done
	case_begin framing-chunk-overflow-says-so
	grep -q 'chunk size too large' "$W/framing-te-overflow.resp" || err "the 400 does not say chunk size too large: $(head -c 300 "$W/framing-te-overflow.resp")"
	case_end
	# finding 14: oversized trailers are named as such (the head has gone: the body is cut, the client told why)
	{
		printf "POST https://www.dane.test:$FP/echo?c=trailers HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n"
		for ((i = 0; i < 300; i++)); do printf 'X-Trailer-%03d: %s\r\n' "$i" "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"; done
		printf '\r\n'
	} >"$W/trailers"
	case_begin oversized-trailers-named
	out=$(raw 127.0.0.1 "${PPORT[HA]}" --send "$W/trailers" --out "$W/trailers.resp" --timeout 10)
	check_re "status line" "$(head -n 1 "$W/trailers.resp" | tr -d '\r')" '^HTTP/1.1 400 '
	check_re "Proxy-Status" "$(header "$W/trailers.resp" Proxy-Status)" 'details="request trailers larger than 16 KiB"'
	case_end

	# --- finding 5: one normal form for names; "name.." is not a name
	t_req HR name-trailing-dot-rule-applies "https://NOTLSA.dane.test.:$FP/hello?c=name-dot" 502 "" policy=dane-only \
		error=tls_certificate_error "target=notlsa.dane.test:$FP"
	case_begin name-double-dot-refused
	req name-dotdot HR "https://notlsa.dane.test..:$FP/hello?c=name-dotdot"
	check "status" "$R_CODE" 400
	check_re "Proxy-Status" "$(header "$W/req-name-dotdot.h" Proxy-Status)" '^daneproxy; error=http_request_error; details="[^"]*host name'
	grep -q 'c=name-dotdot' "$ORIGIN_LOG" && err "the origin received the request"
	case_end
	case_begin connect-double-dot-refused
	out=$(attack hello 127.0.0.1 "${PPORT[HR]}" --connect "notlsa.dane.test..:$FP" --sni notlsa.dane.test)
	check "CONNECT status" "$(pyjson "$out" 'j["connect_status"]')" 400
	case_end

	# --- finding 6: the ports allow-list holds for absolute-form requests too (no port scanning the proxy host)
	for i in "127.0.0.1:22" "127.0.0.1:$TESTBED_DNS_PORT" "www.dane.test:$FP"; do
		case_begin "port-denied-${i//[:.]/-}"
		req "port-${i//[:.]/-}" HD "https://$i/"
		check "status" "$R_CODE" 403
		check_re "Proxy-Status" "$(header "$W/req-port-${i//[:.]/-}.h" Proxy-Status)" '^daneproxy; error=http_request_denied; details="port [0-9]+ is not'
		get_logline "$W/HD.log" "$R_LPORT"
		expect_log "$LOGLINE" status=403 error=http_request_denied peer=null
		case_end
	done
	case_begin port-denied-connect
	out=$(attack hello 127.0.0.1 "${PPORT[HD]}" --connect "127.0.0.1:22" --sni www.dane.test)
	check "CONNECT status" "$(pyjson "$out" 'j["connect_status"]')" 403
	case_end

	# --- finding 7: HTTP/1.0 clients get no chunked framing; versions other than 1.0/1.1 get 505
	case_begin http10-client-dechunked
	printf "GET https://www.dane.test:$FP/chunked/chunk.txt HTTP/1.0\r\nHost: www.dane.test\r\n\r\n" >"$W/http10"
	out=$(raw 127.0.0.1 "${PPORT[HA]}" --send "$W/http10" --out "$W/http10.resp" --timeout 10)
	check_re "status line" "$(head -n 1 "$W/http10.resp" | tr -d '\r')" '^HTTP/1.1 200 '
	check "Transfer-Encoding" "$(header "$W/http10.resp" Transfer-Encoding)" ""
	check "Connection" "$(header "$W/http10.resp" Connection)" close
	raw 127.0.0.1 "${PPORT[HA]}" --send "$W/http10" --out "$W/http10.body" --strip-head --timeout 10 >/dev/null
	check "body sha256" "$(sha "$W/http10.body")" "$(sha "$WWW/chunk.txt")"
	check "closed" "$(pyjson "$out" 'j["eof"]')" true
	case_end
	printf "GET https://www.dane.test:$FP/hello?c=v20 HTTP/2.0\r\nHost: x\r\n\r\n" >"$W/v20"
	printf "GET https://www.dane.test:$FP/hello?c=v19 HTTP/1.9\r\nHost: x\r\n\r\n" >"$W/v19"
	raw_case version-2.0-505 HA "$W/v20" 505 v20
	raw_case version-1.9-505 HA "$W/v19" 505 v19

	# --- finding 8: the whole ClientHello is read, over several records, and its SNI must be a valid host name
	case_begin sni-split-hello-works
	out=$(attack hello 127.0.0.1 "${PPORT[HA]}" --connect "www.dane.test:$FP" --sni www.dane.test --split 60 --finish "/hello?c=split-hello")
	check "records sent" "$(pyjson "$out" 'j["records"]')" 2
	check "ServerHello" "$(pyjson "$out" 'j["server_hello"]')" true
	check_re "response" "$(pyjson "$out" 'j["response"]')" '^HTTP/1.1 200 .*hard-origin'
	case_end
	case_begin sni-split-hello-mismatch-refused
	out=$(attack hello 127.0.0.1 "${PPORT[HA]}" --connect "www.dane.test:$FP" --sni evil.dane.test --split 60)
	check "ServerHello" "$(pyjson "$out" 'j["server_hello"]')" false
	check "closed" "$(pyjson "$out" 'j["closed"]')" true
	wait_for 5 grep -q '"close": "sni_mismatch"' "$W/HA.log" || err "no log line with close sni_mismatch"
	case_end
	# "www.dane.testX.evil" with X turned into a NUL: www.dane.test\0.evil
	case_begin sni-nul-refused
	out=$(attack hello 127.0.0.1 "${PPORT[HA]}" --connect "www.dane.test:$FP" --sni www.dane.testX.evil \
		--patch "$(printf 'www.dane.testX.evil' | od -An -tx1 | tr -d ' \n')=$(printf 'www.dane.test' | od -An -tx1 | tr -d ' \n')002e6576696c")
	check "ServerHello" "$(pyjson "$out" 'j["server_hello"]')" false
	wait_for 5 grep -q '"close": "sni_invalid"' "$W/HA.log" || err "no log line with close sni_invalid"
	case_end
	# --- finding 9: client bytes >= 0x80 in the log stay valid UTF-8 JSON
	case_begin sni-high-bytes-log-is-json
	out=$(attack hello 127.0.0.1 "${PPORT[HA]}" --connect "www.dane.test:$FP" --sni www.dane.testXY \
		--patch "$(printf 'www.dane.testXY' | od -An -tx1 | tr -d ' \n')=$(printf 'www.dane.test' | od -An -tx1 | tr -d ' \n')fffe")
	check "ServerHello" "$(pyjson "$out" 'j["server_hello"]')" false
	wait_for 5 grep -q '"close": "sni_invalid"' "$W/HA.log" || err "no sni_invalid log line"
	"$PY" -c 'import json,sys
for n, line in enumerate(open(sys.argv[1], "rb"), 1):
    try:
        json.loads(line.decode("utf-8", "strict"))
    except Exception as e:
        sys.exit("line %d: %s: %r" % (n, e, line[:300]))' "$W/HA.log" 2>"$W/json-check.err" || err "the log is not UTF-8 JSON: $(cat "$W/json-check.err")"
	case_end
	# --- finding 14: a 16.6 KB ClientHello (two records) is handled, not an internal error
	case_begin big-client-hello
	out=$(attack hello 127.0.0.1 "${PPORT[HA]}" --connect "www.dane.test:$FP" --sni www.dane.test --pad 16000)
	check_re "hello size" "$(pyjson "$out" 'j["hello_bytes"]')" '^16[0-9]{3}$'
	check "ServerHello" "$(pyjson "$out" 'j["server_hello"]')" true
	grep -q '"close": "internal_error"' "$W/HA.log" && err "a log line says internal_error"
	case_end

	# --- finding 12 (run time): a destination that is one of the proxy's own listeners is refused, no fan-out
	case_begin loop-absolute-form
	local before after
	before=$(wc -l <"$W/HA.log")
	req loop HA "https://127.0.0.1:${PPORT[HA]}/hello"
	check "status" "$R_CODE" 502
	check_re "Proxy-Status" "$(header "$W/req-loop.h" Proxy-Status)" '^daneproxy; error=proxy_loop_detected; '
	get_logline "$W/HA.log" "$R_LPORT"
	after=$(wc -l <"$W/HA.log")
	check "log lines for the request" "$((after - before))" 1
	case_end
	case_begin loop-connect
	before=$(wc -l <"$W/HA.log")
	out=$(attack hello 127.0.0.1 "${PPORT[HA]}" --connect "127.0.0.1:${PPORT[HA]}" --sni www.dane.test)
	check "CONNECT status" "$(pyjson "$out" 'j["connect_status"]')" 502
	wait_for 5 grep -q '"error": "proxy_loop_detected"' "$W/HA.log" || err "no proxy_loop_detected log line"
	case_end

	case_alive HA HB HD HR
}

group_hardening_daemon() {
	local out rc pid FP i
	PORT_BASE=19000
	make_content
	free_port; FP=$FREE
	nginx_start hardd "$FP" "TLSv1.2 TLSv1.3" hardd-origin || return
	ORIGIN_LOG=${NGX_LOG[hardd]}
	local OK="https://www.dane.test:$FP/hello"

	# --- finding 10: hostile local files never hang start-up
	mkfifo "$W/fifo"
	case_begin config-fifo
	out=$(timeout 5 "$DANEPROXY" -t -c "$W/fifo" 2>&1); rc=$?
	check "exit status" "$rc" 2
	check_re "message" "$out" 'fifo.*not a regular file'
	case_end
	free_port
	case_begin trust-anchor-dev-zero
	out=$(timeout 5 "$DANEPROXY" --listen "127.0.0.1:$FREE" --trust-anchor /dev/zero --resolver "$TESTBED_RESOLVER" \
		--state-dir "$W/st-z" 2>&1); rc=$?
	check "exit status" "$rc" 1
	check_re "message" "$out" '/dev/zero: not a regular file'
	case_end
	case_begin ca-file-fifo
	out=$(timeout 5 "$DANEPROXY" --listen "127.0.0.1:$FREE" --ca-file "$W/fifo" --resolver "$TESTBED_RESOLVER" \
		--trust-anchor "$TESTBED_TRUST_ANCHOR" --state-dir "$W/st-f" 2>&1); rc=$?
	check "exit status" "$rc" 1
	check_re "message" "$out" 'fifo: not a regular file'
	case_end
	case_begin ca-key-fifo
	mkdir -p "$W/st-k" && chmod 700 "$W/st-k" && mkfifo -m 600 "$W/st-k/ca.key"
	out=$(timeout 5 "$DANEPROXY" --listen "127.0.0.1:$FREE" --resolver "$TESTBED_RESOLVER" \
		--trust-anchor "$TESTBED_TRUST_ANCHOR" --state-dir "$W/st-k" 2>&1); rc=$?
	check "exit status" "$rc" 1
	check_re "message" "$out" 'ca.key: not a regular file'
	case_end

	# --- finding 14: a state directory that cannot be read is an error, not a missing CA
	case_begin state-dir-unreadable
	if command -v setpriv >/dev/null && [ "$(id -u)" = 0 ]; then
		# A state directory nobody may search, in a work directory anybody may: "cannot tell" must not become
		# "no CA yet, create one" (which failed writing ca.key.tmp.N).
		local open_dir
		open_dir=$(mktemp -d "${TMPDIR:-/tmp}/daneproxy-open.XXXXXX") && chmod 711 "$open_dir"
		mkdir -p "$open_dir/locked" && chmod 700 "$open_dir/locked"
		out=$(timeout 5 setpriv --reuid=65534 --regid=65534 --clear-groups "$DANEPROXY" ca show --state-dir "$open_dir/locked" 2>&1); rc=$?
		rm -rf "$open_dir"
		check "exit status" "$rc" 1
		check_re "message" "$out" 'locked/ca.key: Permission denied'
		[[ $out == *".tmp."* ]] && err "it tried to create a CA in a directory it cannot read: $out"
	else
		note "needs root and setpriv: only test_util's file_exists case covers it"
	fi
	case_end

	# --- finding 11: a dual-stack listener takes IPv4 loopback clients as loopback
	if [ "$HAVE_V6" = 1 ]; then
		free_port
		PPORT[DS]=$FREE
		spawn DS "$DANEPROXY" --listen "[::]:$FREE" --allow-from 198.51.100.0/24 --ports "$TEST_PORTS" \
			--resolver "$TESTBED_RESOLVER" --trust-anchor "$TESTBED_TRUST_ANCHOR" --ca-file "$TESTBED_CA_CERT" \
			--state-dir "$W/st-ds" --log "$W/DS.log"
		PPIDOF[DS]=$SPAWNED
		if await_proxy DS 1; then
			t_req DS dual-stack-ipv4-loopback "$OK?c=dual-stack" 200 hardd-origin "client~^127\\.0\\.0\\.1:"
		fi
	fi

	# --- finding 12 (-t): a route to one of the proxy's own listeners
	case_begin route-to-itself-refused-by-t
	out=$("$DANEPROXY" -t --route "127.0.0.1:18999=127.0.0.1:18999" 2>&1); rc=$?
	check "exit status" "$rc" 2
	check_re "message" "$out" "own listeners"
	out=$("$DANEPROXY" -t --listen 127.0.0.1:18998 --route "127.0.0.1:18997=127.0.0.1:18998" 2>&1); rc=$?
	check "route to the HTTP listener: exit status" "$rc" 2
	out=$("$DANEPROXY" -t --listen "0.0.0.0:18996" --allow-from 127.0.0.0/8 --route "127.0.0.1:18995=127.0.0.2:18996" 2>&1); rc=$?
	check "route to a wildcard listener: exit status" "$rc" 2
	out=$("$DANEPROXY" -t --route "127.0.0.1:18994=127.0.0.1:18993" 2>&1); rc=$?
	check "a route elsewhere: exit status" "$rc" 0
	case_end

	# --- finding 13: no signal kills the daemon by accident. HUP reloads (issue 13), USR1 reopens the log, USR2 is
	# logged and ignored; a transfer in flight goes on through all of them.
	http_proxy SG --ca-file "$TESTBED_CA_CERT" --state-dir "$W/st-sg"
	await_proxy SG 1 || return
	case_begin signals-hup-usr-transfer-survives
	pid=${PPIDOF[SG]}
	curl -s --max-time 30 -o "$W/sg1.b" -w '%{http_code}' --request-target "https://www.dane.test:$FP/slow/slow.bin" \
		"http://127.0.0.1:${PPORT[SG]}/" >"$W/sg1.r" 2>&1 &
	local cpid=$!
	sg1_started() { [ -s "$W/sg1.b" ]; }
	wait_for 10 sg1_started || err "the slow download did not start"
	for i in HUP USR1 USR2; do kill "-$i" "$pid"; done
	wait "$cpid"
	check "download status" "$(cat "$W/sg1.r")" 200
	check "download sha256" "$(sha "$W/sg1.b")" "$(sha "$WWW/slow.bin")"
	alive "$pid" || err "the proxy died of a signal"
	reloaded() { grep -q 'configuration reloaded' "$W/SG.err"; }
	wait_for 10 reloaded || err "no log line for the reload on SIGHUP"
	grep -q 'SIGUSR2 ignored' "$W/SG.err" || err "no log line for SIGUSR2"
	case_end
	t_req SG after-signals "$OK?c=after-signals" 200 hardd-origin
	case_begin signals-second-term-closes-now
	curl -s --max-time 30 -o "$W/sg2.b" -w '%{http_code}' --request-target "https://www.dane.test:$FP/slow/slow.bin" \
		"http://127.0.0.1:${PPORT[SG]}/" >"$W/sg2.r" 2>&1 &
	cpid=$!
	sg2_started() { [ -s "$W/sg2.b" ]; }
	wait_for 10 sg2_started || err "the slow download did not start"
	# The supervisor's own line, counted: the reload of the case before left a worker's "no new connections"
	# in the file, and a second TERM sent before the first was read would merge with it (signals do not queue).
	n_stopping=$(grep -c 'workers get' "$W/SG.err")
	kill -TERM "$pid"
	stopping() { [ "$(grep -c 'workers get' "$W/SG.err")" -gt "$n_stopping" ]; }
	wait_for 5 stopping || err "no message for the first SIGTERM"
	alive "$pid" || err "the proxy exited at the first SIGTERM with a download open"
	kill -TERM "$pid"
	wait_for 5 not_alive "$pid" || err "the proxy still runs 5 s after the second SIGTERM"
	grep -q 'second signal, closing now' "$W/SG.err" || err "no message for the second SIGTERM"
	wait "$pid"
	rc=$?
	check "proxy exit status" "$rc" 0
	wait "$cpid"
	case_end
}
