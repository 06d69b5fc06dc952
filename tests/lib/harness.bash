# harness.bash - helpers shared by the end-to-end suites (tests/e2e/e2e.sh, tests/connect/connect.sh):
# deadlines without blind sleeps, ports, process groups, per-case results, and checks of the proxy's JSON log lines.
# The suites define GROUP, RESULTS, CASE_ERRS and friends; these functions use them at call time.
# shellcheck shell=bash

now_ms() { local t=${EPOCHREALTIME/[.,]/}; NOW=$((10#$t / 1000)); }

# wait_for SECONDS CMD... - poll CMD until it succeeds or the deadline passes (no blind sleeps)
wait_for() {
	local limit=$1 end
	shift
	now_ms; end=$((NOW + limit * 1000))
	while ! "$@"; do
		now_ms
		[ "$NOW" -ge "$end" ] && return 1
		sleep 0.02
	done
	return 0
}

port_listening() {
	local hex
	printf -v hex '%04X' "$1"
	grep -Eq "^ *[0-9]+: [0-9A-F]+:$hex [0-9A-F]+:[0-9A-F]{4} 0A " /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

port_used() {
	local hex
	printf -v hex '%04X' "$1"
	grep -Eq ":$hex " /proc/net/tcp /proc/net/tcp6 /proc/net/udp /proc/net/udp6 2>/dev/null
}

# spawn NAME CMD... - run CMD in its own session/process group; stdout/stderr to $W/NAME.out/.err; SPAWNED=pid
spawn() {
	local name=$1
	shift
	# Emptied here, not only by the child's redirections: those run in the background, and a caller polling the
	# file of an earlier process of the same name would read that one's lines (its "ready") until they do.
	: >"$W/$name.out"
	: >"$W/$name.err"
	setsid "$@" </dev/null >"$W/$name.out" 2>"$W/$name.err" &
	SPAWNED=$!
	PIDS+=("$SPAWNED")
}

alive() {
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	s=${s##*) }
	[ "${s:0:1}" != Z ]
}

not_alive() { ! alive "$1"; }

case_begin() { CASE=$1; CASE_ERRS=(); CASE_NOTES=(); }

err() { CASE_ERRS+=("$*"); }

note() { CASE_NOTES+=("$*"); }

check() { [ "$2" == "$3" ] || err "$1: got '$2', want '$3'"; }

check_re() { [[ $2 =~ $3 ]] || err "$1: got '$2', want /$3/"; }

check_true() {
	local what=$1
	shift
	"$@" || err "$what"
}

case_end() {
	local e
	if [ ${#CASE_ERRS[@]} -eq 0 ]; then
		echo "ok   $GROUP/$CASE"
		echo "pass $GROUP/$CASE" >>"$RESULTS"
	else
		echo "FAIL $GROUP/$CASE"
		for e in "${CASE_ERRS[@]}"; do echo "       $e"; done
		for e in "${CASE_NOTES[@]}"; do echo "       | $e"; done
		echo "fail $GROUP/$CASE" >>"$RESULTS"
	fi
}

# setup_fail WHAT - a group could not set up: count one failure and show the files that explain it
setup_fail() {
	case_begin "setup"
	err "$1"
	local f
	for f in "${@:2}"; do
		[ -f "$f" ] && note "$f: $(tail -n 5 "$f" | tr '\n' ' ')"
	done
	case_end
}

# jget LINE KEY - a value of the proxy's JSON log line: string contents, or the bare token (null, numbers, true)
jget() {
	local re="\"$2\": (\"(([^\"\\\\]|\\\\.)*)\"|([^,}]*))"
	if [[ $1 =~ $re ]]; then
		if [ "${BASH_REMATCH[1]:0:1}" == '"' ]; then
			printf '%s' "${BASH_REMATCH[2]}"
		else
			printf '%s' "${BASH_REMATCH[4]}"
		fi
	else
		printf '<absent>'
	fi
}

# expect_log LINE key=value|key~regex ... - check fields of a JSON log line
expect_log() {
	local line=$1 spec key val got
	shift
	if [ -z "$line" ]; then
		err "no log line for this connection"
		return
	fi
	for spec in "$@"; do
		if [[ $spec =~ ^([a-z_]+)([=~])(.*)$ ]]; then
			key=${BASH_REMATCH[1]}
			val=${BASH_REMATCH[3]}
			got=$(jget "$line" "$key")
			if [ "${BASH_REMATCH[2]}" == "=" ]; then
				[ "$got" == "$val" ] || err "log $key: got '$got', want '$val'"
			else
				[[ $got =~ $val ]] || err "log $key: got '$got', want /$val/"
			fi
		fi
	done
	[ ${#CASE_ERRS[@]} -eq 0 ] || note "log: $line"
}

# get_logline LOGFILE CLIENT_PORT - LOGLINE = the (last) line of that client connection; waits for it
has_logline() { grep -qF "\"client\": \"127.0.0.1:$2\"" "$1" 2>/dev/null; }

get_logline() {
	LOGLINE=""
	if wait_for 5 has_logline "$1" "$2"; then
		LOGLINE=$(grep -F "\"client\": \"127.0.0.1:$2\"" "$1" | tail -n 1)
	fi
}

sha() { sha256sum "$1" 2>/dev/null | cut -d' ' -f1; }

# header FILE NAME - the value of a response header in FILE (the last one), without CR
header() {
	grep -i "^$2:" "$1" 2>/dev/null | tail -n 1 | tr -d '\r' | sed -e "s/^[^:]*: *//"
}

# free_port - FREE = an unused TCP/UDP port in PORT_BASE .. PORT_BASE + 1999, never one this script took before
# (suites running in parallel use different bases: e2e 10000-15999 and 18000-19999, connect 16000-17999, the bed
# 20000+)
PORT_BASE=${PORT_BASE:-10000}
PORT_SPAN=${PORT_SPAN:-2000}
TAKEN=" "
free_port() {
	local p i
	for ((i = 0; i < 500; i++)); do
		p=$((PORT_BASE + RANDOM % PORT_SPAN))
		case "$TAKEN" in *" $p "*) continue ;; esac
		port_used "$p" && continue
		TAKEN="$TAKEN$p "
		FREE=$p
		return 0
	done
	echo "no free port in $PORT_BASE.." >&2
	return 1
}

# Processes started with spawn; stop_pid ends one, cleanup all of them.
PIDS=()
# stop_pid PID [SIGNAL] - signal its process group (default TERM), SIGKILL the group after STOP_WAIT seconds
# (default 5), reap; STOP_RC = its exit status
STOP_WAIT=${STOP_WAIT:-5}
stop_pid() {
	local pid=$1 sig=${2:-TERM}
	kill "-$sig" -- "-$pid" 2>/dev/null || kill "-$sig" "$pid" 2>/dev/null
	wait_for "$STOP_WAIT" not_alive "$pid" || true
	kill -KILL -- "-$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	STOP_RC=$?
	forget_pid "$pid"
	return 0
}
forget_pid() {
	local i
	for i in "${!PIDS[@]}"; do
		[ "${PIDS[$i]}" == "$1" ] && unset 'PIDS[i]'
	done
}
# CLEANUP_HOOKS - commands run first at cleanup (a suite's own servers, e.g. Postfix)
CLEANUP_HOOKS=()
cleanup() {
	local pid hook
	for hook in "${CLEANUP_HOOKS[@]}"; do
		$hook
	done
	CLEANUP_HOOKS=()
	for pid in "${PIDS[@]}"; do
		stop_pid "$pid" TERM
	done
	PIDS=()
}
