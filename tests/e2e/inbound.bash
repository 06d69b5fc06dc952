# inbound.bash - end-to-end cases of the inbound redesign (issue 10), sourced by e2e.sh as group "inbound":
# WebSocket through absolute-form, a refused upload that still reads its 502 (lingering close), an HTTP/1.0
# origin seen as HTTP/1.1, Proxy-Status on the proxy's own refusals (400, 403, 503).
# shellcheck shell=bash

group_inbound() {
	local out WS H10 FP big i
	make_content
	free_port; WS=$FREE
	free_port; H10=$FREE
	free_port; FP=$FREE
	nginx_start inbound "$FP" "TLSv1.2 TLSv1.3" inbound-origin || return
	ORIGIN_LOG=${NGX_LOG[inbound]}
	helper wsecho wsecho "$WS" "$TESTBED_CHAIN" "$TESTBED_LEAF_KEY" || return
	helper http10 http10 "$H10" "$TESTBED_CHAIN" "$TESTBED_LEAF_KEY" || return
	# I: names under dane.test on ports without TLSA: secure absence, PKIX fallback to the bed's CA.
	http_proxy I --ca-file "$TESTBED_CA_CERT" --state-dir "$W/state"
	http_proxy L --ca-file "$TESTBED_CA_CERT" --state-dir "$W/state-l" --max-connections 1
	await_proxy I 1 || return
	await_proxy L 1 || return

	# --- WebSocket (RFC 6455) through absolute-form: the 101 relayed, then raw frames both ways
	case_begin websocket-echo
	out=$("$PY" "$HELPER" ws 127.0.0.1 "${PPORT[I]}" "https://www.dane.test:$WS/chat")
	check_re "status line" "$(pyjson "$out" 'j["status"]')" '^HTTP/1.1 101 '
	check "Sec-WebSocket-Accept" "$(pyjson "$out" 'j["accept_ok"]')" true
	check "echo" "$(pyjson "$out" 'j["echoes"]')" '["hello through daneproxy"]'
	get_logline "$W/I.log" "$(pyjson "$out" 'j["local_port"]')"
	expect_log "$LOGLINE" status=101 auth=pkix requests=1 close=done
	case_end
	# bytes the client sent before the 101 (its first frame, in the same write as the request) are carried over
	case_begin websocket-early-bytes-carried
	out=$("$PY" "$HELPER" ws 127.0.0.1 "${PPORT[I]}" "https://www.dane.test:$WS/chat" --early)
	check_re "status line" "$(pyjson "$out" 'j["status"]')" '^HTTP/1.1 101 '
	check "echoes" "$(pyjson "$out" 'j["echoes"]')" '["early-frame", "hello through daneproxy"]'
	case_end

	# --- a client still uploading 2 MB to a refused target reads the whole 502, not a reset (lingering close)
	case_begin refused-upload-reads-502
	big=$W/upload-2m
	{
		printf 'POST https://www.expired.dane.test/upload HTTP/1.1\r\nHost: www.expired.dane.test\r\nContent-Length: 2097152\r\n\r\n'
		head -c 2097152 /dev/zero
	} >"$big"
	out=$(raw 127.0.0.1 "${PPORT[I]}" --send "$big" --out "$W/upload.resp" --timeout 15)
	check "send error" "$(pyjson "$out" 'j["send_error"]')" null
	check_re "status line" "$(head -n 1 "$W/upload.resp" | tr -d '\r')" '^HTTP/1.1 502 '
	check_re "Proxy-Status" "$(header "$W/upload.resp" Proxy-Status)" '^daneproxy; error=dns_error; '
	local clen got
	clen=$(header "$W/upload.resp" Content-Length)
	got=$("$PY" -c 'import sys; d=open(sys.argv[1],"rb").read(); print(len(d) - d.index(b"\r\n\r\n") - 4)' "$W/upload.resp")
	check "the whole error body" "$got" "$clen"
	get_logline "$W/I.log" "$(pyjson "$out" 'j["local_port"]')"
	expect_log "$LOGLINE" status=502 error=dns_error close=refused
	case_end

	# --- an HTTP/1.0 origin: the client sees HTTP/1.1, and the close that ends the body ends its connection
	case_begin http10-origin-seen-as-11
	printf 'GET https://www.dane.test:%s/old HTTP/1.1\r\nHost: www.dane.test\r\n\r\n' "$H10" >"$W/h10"
	out=$(raw 127.0.0.1 "${PPORT[I]}" --send "$W/h10" --out "$W/h10.resp" --timeout 10)
	check "status line" "$(head -n 1 "$W/h10.resp" | tr -d '\r')" "HTTP/1.1 200 OK"
	check "Connection" "$(header "$W/h10.resp" Connection)" close
	check "X-Origin" "$(header "$W/h10.resp" X-Origin)" http10
	check "body" "$(tail -n 1 "$W/h10.resp")" "http10-origin body"
	check "closed" "$(pyjson "$out" 'j["eof"]')" true
	case_end

	# --- every refusal of the proxy's own carries Proxy-Status with an RFC 9209 token
	case_begin proxy-status-400
	printf 'BLAH \001 nonsense\r\n\r\n' >"$W/bad400"
	raw 127.0.0.1 "${PPORT[I]}" --send "$W/bad400" --out "$W/bad400.resp" --timeout 10 >/dev/null
	check_re "status line" "$(head -n 1 "$W/bad400.resp" | tr -d '\r')" '^HTTP/1.1 400 '
	check_re "Proxy-Status" "$(header "$W/bad400.resp" Proxy-Status)" '^daneproxy; error=http_request_error; details="[^"]+"$'
	case_end
	case_begin proxy-status-403
	req p403 I "http://www.dane.test:$FP/hello"
	check "status" "$R_CODE" 403
	check_re "Proxy-Status" "$(header "$W/req-p403.h" Proxy-Status)" '^daneproxy; error=http_request_denied; details="[^"]+"$'
	case_end
	case_begin proxy-status-503
	# L allows one connection: hold it with an idle keep-alive client, then a second is turned away.
	"$PY" -c 'import socket,sys,time
s=socket.create_connection(("127.0.0.1", int(sys.argv[1])))
sys.stdout.write("held\n"); sys.stdout.flush(); time.sleep(8)' "${PPORT[L]}" >"$W/hold.out" &
	local hpid=$!
	held() { grep -q held "$W/hold.out"; }
	wait_for 5 held
	busy() { req p503 L "https://www.dane.test:$FP/hello"; [ "$R_CODE" = 503 ]; }
	wait_for 3 busy
	check "status" "$R_CODE" 503
	check_re "Proxy-Status" "$(header "$W/req-p503.h" Proxy-Status)" '^daneproxy; error=connection_limit_reached'
	kill "$hpid" 2>/dev/null
	wait "$hpid" 2>/dev/null
	case_end

	case_alive I L
}
