# service.bash - the daemon as a service (issue 13), sourced by e2e.sh as group "service": reloads under load (zero
# failed connections over 20 SIGHUPs), an invalid configuration left unapplied, a worker killed mid-load, log
# rotation with SIGUSR1, connections refused at the limit logged, and /metrics parsed by a real Prometheus parser
# with its counters checked against the traffic sent.
# shellcheck shell=bash

LOADGEN=$(dirname "$DANEPROXY")/daneproxy-loadgen

# workers_of PID - the worker processes of a supervisor
workers_of() { pgrep -P "$1" 2>/dev/null | tr '\n' ' '; }

# metric FILE EXPR - a Python expression over the parsed exposition: m(name, **labels) is a sample's value
metric() {
	"$PY" - "$1" "$2" <<'EOF'
import sys
from prometheus_client.parser import text_string_to_metric_families
fams = list(text_string_to_metric_families(open(sys.argv[1]).read()))
def m(name, **labels):
    for f in fams:
        for s in f.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return None
print(eval(sys.argv[2]))
EOF
}

group_service() {
	local FP MP out pid i before after code
	make_content
	free_port; FP=$FREE
	nginx_start svc "$FP" "TLSv1.2 TLSv1.3" svc-origin || return
	ORIGIN_LOG=${NGX_LOG[svc]}
	local OK="https://www.dane.test:$FP/hello"
	free_port; MP=$FREE
	free_port
	PPORT[SV]=$FREE
	cat >"$W/sv.ini" <<EOF
[proxy]
listen = 127.0.0.1:$FREE
workers = 2
ports = $TEST_PORTS
log = $W/SV.log
shutdown_grace = 5s
[connect]
state_dir = $W/st-sv
[resolver]
upstream = $TESTBED_RESOLVER
trust_anchor = $TESTBED_TRUST_ANCHOR
[policy]
ca_file = $TESTBED_CA_CERT
[metrics]
listen = 127.0.0.1:$MP
EOF
	spawn SV "$DANEPROXY" -c "$W/sv.ini"
	PPIDOF[SV]=$SPAWNED
	await_proxy SV 1 || return
	pid=${PPIDOF[SV]}

	case_begin two-workers
	check "workers" "$(workers_of "$pid" | wc -w)" 2
	grep -q '^daneproxy: 2 workers' "$W/SV.out" || err "no line saying 2 workers"
	case_end

	# --- /metrics: a real parser, counters that match the traffic
	case_begin metrics-parse-and-count
	for ((i = 0; i < 5; i++)); do req "m$i" SV "$OK?c=metrics-$i"; done
	req mbad SV "https://www.expired.dane.test:$FP/"
	req mport SV "https://www.dane.test:22/"
	curl -s --max-time 5 -o "$W/metrics.txt" "http://127.0.0.1:$MP/metrics"
	check "parses" "$(metric "$W/metrics.txt" 'len(fams) > 10')" True
	check "connections_total (http)" "$(metric "$W/metrics.txt" 'int(m("daneproxy_connections_total", listener="http"))')" 7
	check "pkix fallbacks" "$(metric "$W/metrics.txt" 'int(m("daneproxy_verifications_total", result="pkix_fallback"))')" 5
	check "refusals dns_error" "$(metric "$W/metrics.txt" 'int(m("daneproxy_refusals_total", error="dns_error"))')" 1
	check "refusals http_request_denied" \
		"$(metric "$W/metrics.txt" 'int(m("daneproxy_refusals_total", error="http_request_denied"))')" 1
	check "bogus outcomes" "$(metric "$W/metrics.txt" 'int(m("daneproxy_dnssec_outcomes_total", outcome="bogus"))')" 1
	check "dns histogram count" "$(metric "$W/metrics.txt" 'int(m("daneproxy_dns_lookup_duration_seconds_count"))')" 6
	check "handshake histogram count" \
		"$(metric "$W/metrics.txt" 'int(m("daneproxy_upstream_handshake_duration_seconds_count"))')" 5
	check_re "bytes down" "$(metric "$W/metrics.txt" 'int(m("daneproxy_bytes_total", direction="down"))')" '^[0-9]{3,}$'
	check "build_info" "$(metric "$W/metrics.txt" 'm("daneproxy_build_info", version="0.1.0") == 1.0')" True
	check "404 elsewhere" "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MP/other")" 404
	case_end

	# --- 20 SIGHUPs under load: not one failed connection
	case_begin reload-20-under-load
	"$LOADGEN" --mode http --connect "127.0.0.1:${PPORT[SV]}" --host www.dane.test --port "$FP" --path /hello \
		-c 4 -d 12 --json >"$W/load.json" 2>"$W/load.err" &
	local lpid=$!
	sleep_until_load() { [ -s "$W/SV.log" ]; }
	wait_for 5 sleep_until_load
	for ((i = 1; i <= 20; i++)); do
		kill -HUP "$pid"
		reloads_done() { [ "$(grep -c 'configuration reloaded' "$W/SV.err")" -ge "$i" ]; }
		wait_for 10 reloads_done || { err "reload $i did not finish"; break; }
	done
	wait "$lpid"
	check "load exit" "$?" 0
	check "failed connections over 20 reloads" "$(pyjson "$(cat "$W/load.json")" 'j["connections"] - j["ok"]')" 0
	check_re "requests served" "$(pyjson "$(cat "$W/load.json")" 'j["ok"]')" '^[0-9]{2,}$'
	curl -s --max-time 5 -o "$W/metrics2.txt" "http://127.0.0.1:$MP/metrics"
	check "reloads counted" "$(metric "$W/metrics2.txt" 'int(m("daneproxy_config_reloads_total", result="success"))')" 20
	check "workers after the reloads" "$(workers_of "$pid" | wc -w)" 2
	case_end

	# --- an invalid configuration on SIGHUP: every error logged, the old one keeps serving, the failure counted
	case_begin reload-invalid-keeps-old
	cp "$W/sv.ini" "$W/sv.good"
	printf '[proxy]\nmax_connections = none\nfrobnicate = 1\n' >>"$W/sv.ini"
	before=$(grep -c 'reload failed' "$W/SV.err")
	kill -HUP "$pid"
	failed_once() { [ "$(grep -c 'reload failed' "$W/SV.err")" -gt "$before" ]; }
	wait_for 10 failed_once || err "no 'reload failed' line"
	grep -q 'max_connections: "none"' "$W/SV.err" || err "the max_connections error is not logged"
	grep -q 'frobnicate' "$W/SV.err" || err "the unknown key is not logged"
	req after-invalid SV "$OK?c=after-invalid"
	check "a request after the failed reload" "$R_CODE" 200
	curl -s --max-time 5 -o "$W/metrics3.txt" "http://127.0.0.1:$MP/metrics"
	check "failure counted" "$(metric "$W/metrics3.txt" 'int(m("daneproxy_config_reloads_total", result="failure"))')" 1
	cp "$W/sv.good" "$W/sv.ini"
	case_end

	# --- a worker killed mid-load: its connections fail, new ones succeed, the restart is counted
	case_begin worker-killed-restarted
	"$LOADGEN" --mode http --connect "127.0.0.1:${PPORT[SV]}" --host www.dane.test --port "$FP" --path /hello \
		-c 4 -d 6 --json >"$W/load2.json" 2>"$W/load2.err" &
	lpid=$!
	local victim
	victim=$(workers_of "$pid" | cut -d' ' -f1)
	kill -KILL "$victim"
	restarted() { grep -q 'restarted' "$W/SV.err"; }
	wait_for 10 restarted || err "the worker was not restarted"
	wait "$lpid"
	check_re "requests served around the kill" "$(pyjson "$(cat "$W/load2.json")" 'j["ok"]')" '^[0-9]{2,}$'
	req after-kill SV "$OK?c=after-kill"
	check "a request after the restart" "$R_CODE" 200
	check "workers" "$(workers_of "$pid" | wc -w)" 2
	curl -s --max-time 5 -o "$W/metrics4.txt" "http://127.0.0.1:$MP/metrics"
	check "restart counted" "$(metric "$W/metrics4.txt" 'int(m("daneproxy_worker_restarts_total"))')" 1
	case_end

	# --- SIGUSR1 reopens the log: after a rotation the lines go to the new file
	case_begin log-rotation
	mv "$W/SV.log" "$W/SV.log.1"
	kill -USR1 "$pid"
	rotated() { req rot SV "$OK?c=rotated"; [ -s "$W/SV.log" ] && grep -q 'c=rotated' "$ORIGIN_LOG"; }
	wait_for 5 rotated || err "no log line in the new file after SIGUSR1"
	grep -q '"status": 200' "$W/SV.log" 2>/dev/null || err "the new log file has no request line"
	case_end

	case_alive SV
	# --- connections turned away at the limit get a log line and a counter, never silence
	http_proxy LIM --ca-file "$TESTBED_CA_CERT" --state-dir "$W/st-lim" --max-connections 1 --workers 2 \
		--metrics "127.0.0.1:$((MP + 1))"
	await_proxy LIM 1 || return
	case_begin refused-at-limit-logged
	"$PY" -c 'import socket,sys,time
s=socket.create_connection(("127.0.0.1", int(sys.argv[1])))
sys.stdout.write("held\n"); sys.stdout.flush(); time.sleep(6)' "${PPORT[LIM]}" >"$W/hold.out" &
	local hpid=$!
	held() { grep -q held "$W/hold.out"; }
	wait_for 5 held
	limited() { req lim LIM "$OK"; [ "$R_CODE" = 503 ]; }
	wait_for 3 limited || err "no 503 at the limit"
	grep -q 'refused a connection from 127.0.0.1:[0-9]* on .*: max_connections reached' "$W/LIM.err" ||
		err "no log line for the refused connection"
	curl -s --max-time 5 -o "$W/metrics5.txt" "http://127.0.0.1:$((MP + 1))/metrics"
	check_re "refusals connection_limit_reached" \
		"$(metric "$W/metrics5.txt" 'int(m("daneproxy_refusals_total", error="connection_limit_reached"))')" '^[1-9]'
	kill "$hpid" 2>/dev/null
	wait "$hpid" 2>/dev/null
	case_end
}
