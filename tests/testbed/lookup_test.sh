#!/usr/bin/env bash
# lookup_test.sh - `daneproxy lookup` and `daneproxy -t` in both validation modes against the DNSSEC test bed:
# the outcome, rcode and EDE info-code of a secure, an insecure, a bogus and a missing name; resolver mode only
# with loopback upstreams. Run by ctest (fixture dnsbed) as: lookup_test.sh DANEPROXY (TESTBED_ENV set).
# Prints one line per check and "N passed, N failed".
set -u
set -o pipefail
export LC_ALL=C

DP=${1:?usage: lookup_test.sh DANEPROXY}
: "${TESTBED_ENV:?TESTBED_ENV must name testbed.env of the bed}"
# shellcheck disable=SC1090
. "$TESTBED_ENV"
PASS=0
FAIL=0
W=$(mktemp -d "${TMPDIR:-/tmp}/daneproxy-lookup-test.XXXXXX")
trap 'rm -rf "$W"' EXIT

check() { # name got want
	if [ "$2" = "$3" ]; then
		PASS=$((PASS + 1))
		printf 'ok   %s\n' "$1"
	else
		FAIL=$((FAIL + 1))
		printf 'FAIL %s: got "%s", want "%s"\n' "$1" "$2" "$3"
	fi
}

# field JSON KEY - one top-level value of daneproxy's JSON line, as Python prints it
field() { python3 -c 'import json,sys; v=json.loads(sys.argv[1])[sys.argv[2]]; print("null" if v is None else v)' "$1" "$2"; }

lookup_case() { # mode host outcome rcode info_code exit
	local mode=$1 host=$2 out rc=0
	if [ "$mode" = resolver ]; then
		out=$("$DP" lookup --json --validation resolver --resolver "$TESTBED_UNBOUND_RESOLVER" "$host" 2>"$W/err") || rc=$?
	else
		out=$("$DP" lookup --json --resolver "$TESTBED_RESOLVER" --trust-anchor "$TESTBED_TRUST_ANCHOR" "$host" \
			2>"$W/err") || rc=$?
	fi
	check "$mode $host: exit" "$rc" "$6"
	check "$mode $host: outcome" "$(field "$out" outcome)" "$3"
	check "$mode $host: rcode" "$(field "$out" rcode)" "$4"
	case $5 in
		dnssec) # any DNSSEC EDE (unbound's choice depends on its cache)
			case $(field "$out" info_code) in 1 | 2 | 5 | 6 | 7 | 8 | 9 | 10 | 11 | 12) check "$mode $host: info_code" dnssec dnssec ;;
				*) check "$mode $host: info_code" "$(field "$out" info_code)" "a DNSSEC EDE" ;; esac ;;
		*) check "$mode $host: info_code" "$(field "$out" info_code)" "$5" ;;
	esac
	check "$mode $host: validation" "$(field "$out" validation)" "$mode"
}

modes=self
if [ -n "${TESTBED_UNBOUND_RESOLVER:-}" ]; then
	modes="self resolver"
else
	printf 'note: the bed runs no unbound: resolver mode not tested\n'
fi
for m in $modes; do
	lookup_case "$m" "$TESTBED_HOST_SECURE" secure 0 null 0
	lookup_case "$m" "$TESTBED_HOST_INSECURE" insecure 0 null 0
	lookup_case "$m" "$TESTBED_HOST_NXDOMAIN" "no such host" 3 null 1
	lookup_case "$m" "$TESTBED_HOST_ALTERED" bogus 2 dnssec 1
done
# self mode can tell an expired signature
lookup_case self "$TESTBED_HOST_EXPIRED" bogus 2 7 1

# resolver mode only with loopback upstreams, named with file:line by -t
printf '[resolver]\nupstream = 127.0.0.1@53\nupstream = 192.0.2.53\nvalidation = resolver\n' >"$W/bad.ini"
rc=0
out=$("$DP" -t -c "$W/bad.ini" 2>&1) || rc=$?
check "-t rejects a non-loopback upstream in resolver mode: exit" "$rc" 2
case $out in
	*"$W/bad.ini:4: validation: resolver trusts the AD bit only from loopback: upstream 192.0.2.53 "*) check "-t names file:line" ok ok ;;
	*) check "-t names file:line" "$out" "$W/bad.ini:4: validation: ..." ;;
esac
printf '[resolver]\nupstream = 127.0.0.1@53\nupstream = ::1\nvalidation = resolver\n' >"$W/good.ini"
rc=0
"$DP" -t -c "$W/good.ini" >/dev/null 2>&1 || rc=$?
check "-t accepts loopback upstreams in resolver mode" "$rc" 0
rc=0
out=$("$DP" lookup --validation resolver --resolver 192.0.2.53 "$TESTBED_HOST_SECURE" 2>&1) || rc=$?
check "lookup refuses a non-loopback resolver in resolver mode" "$rc" 2

printf '%d passed, %d failed\n' "$PASS" "$FAIL"
[ "$FAIL" -eq 0 ]
