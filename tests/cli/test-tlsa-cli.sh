#!/bin/sh
# test-tlsa-cli.sh - tests of `daneproxy tlsa`: the record it prints must carry exactly the data the OpenSSL
# command line computes (selectors 0/1, matching types 0/1/2, ECDSA and RSA), the owner name must follow
# --host/--port/--proto, its output must verify with `daneproxy verify`, and bad input exits 2.
#
# Usage: test-tlsa-cli.sh /path/to/daneproxy
set -u

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
	echo "usage: $0 /path/to/daneproxy" >&2
	exit 2
fi
BIN=$1
HERE=$(cd "$(dirname "$0")" && pwd)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/daneproxy-cli-tlsa.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM
C=$TMP/certs
if ! sh "$HERE/../certs/gen-certs.sh" "$C"; then
	echo "gen-certs.sh failed"
	exit 1
fi

PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok - $1"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL - $1"; }

# expected_data CERT SELECTOR MTYPE - the record data as the OpenSSL command line computes it, lowercase hex.
expected_data() {
	if [ "$2" = 0 ]; then
		openssl x509 -in "$1" -outform DER >"$TMP/sel.der"
	else
		openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER >"$TMP/sel.der"
	fi
	case $3 in
	0) od -An -v -tx1 <"$TMP/sel.der" | tr -d ' \n' ;;
	1) openssl dgst -sha256 -r <"$TMP/sel.der" | cut -d' ' -f1 ;;
	2) openssl dgst -sha512 -r <"$TMP/sel.der" | cut -d' ' -f1 ;;
	esac
}

# tlsa DESC ARGS... - run `daneproxy tlsa ARGS`; 0 when it exited 0 with exactly one line (kept in $LINE).
tlsa() {
	desc=$1
	shift
	"$BIN" tlsa "$@" >"$TMP/out" 2>"$TMP/err"
	rc=$?
	LINE=$(cat "$TMP/out")
	if [ "$rc" -ne 0 ]; then
		bad "$desc: exit $rc, want 0"
		head -c 600 "$TMP/err" | sed 's/^/    stderr: /'
		return 1
	fi
	if [ "$(wc -l <"$TMP/out")" -ne 1 ]; then
		bad "$desc: want exactly one line of output"
		head -c 600 "$TMP/out" | sed 's/^/    stdout: /'
		return 1
	fi
	return 0
}

# check_record DESC OWNER U S M DATA - $LINE must be "OWNER IN TLSA U S M DATA" (data compared exactly, any case).
check_record() {
	# shellcheck disable=SC2086
	set -- "$@" $LINE
	if [ $# -ne 13 ]; then
		bad "$1: want 7 fields, got: $(echo "$LINE" | cut -c1-200)"
		return
	fi
	got_data=$(echo "${13}" | tr A-F a-f)
	if [ "$7" != "$2" ] || [ "$8" != IN ] || [ "$9" != TLSA ] || [ "${10}" != "$3" ] || [ "${11}" != "$4" ] ||
		[ "${12}" != "$5" ]; then
		bad "$1: got \"$7 $8 $9 ${10} ${11} ${12}\", want \"$2 IN TLSA $3 $4 $5\""
	elif [ "$got_data" != "$6" ]; then
		bad "$1: data differs from openssl's"
		echo "    got:  $(echo "$got_data" | cut -c1-140)"
		echo "    want: $(echo "$6" | cut -c1-140)"
	else
		ok "$1"
	fi
}

# bad_input DESC ARGS... - `daneproxy tlsa ARGS` must exit 2 with a message on stderr.
bad_input() {
	desc=$1
	shift
	"$BIN" tlsa "$@" >"$TMP/out" 2>"$TMP/err"
	rc=$?
	if [ "$rc" -ne 2 ]; then
		bad "$desc: exit $rc, want 2"
	elif [ ! -s "$TMP/err" ]; then
		bad "$desc: exit 2 but nothing on stderr"
	else
		ok "$desc"
	fi
}

OWNER=_443._tcp.www.example.test.

# ------------------------------------------------------------------ data identical to OpenSSL's
for cert in leaf rsa-leaf; do
	for sm in "1 1" "0 1" "1 2" "0 2" "0 0" "1 0"; do
		# shellcheck disable=SC2086
		set -- $sm
		s=$1
		m=$2
		want=$(expected_data "$C/$cert.pem" "$s" "$m")
		if tlsa "$cert 3 $s $m" --cert "$C/$cert.pem" --selector "$s" --mtype "$m"; then
			check_record "$cert 3 $s $m equals openssl" "$OWNER" 3 "$s" "$m" "$want"
		fi
		# The printed record authenticates the certificate it was made from.
		echo "$LINE" >"$TMP/rec.txt"
		"$BIN" verify --host www.example.test --chain "$C/chain-$cert-int1.pem" --tlsa-file "$TMP/rec.txt" \
			>/dev/null 2>"$TMP/err"
		rc=$?
		if [ "$rc" -eq 0 ]; then
			ok "$cert 3 $s $m verifies"
		else
			bad "$cert 3 $s $m: daneproxy verify exit $rc, want 0"
			head -c 400 "$TMP/err" | sed 's/^/    stderr: /'
		fi
	done
done

# ------------------------------------------------------------------ defaults and owner names
if tlsa "defaults" --cert "$C/leaf.pem"; then
	want="$OWNER IN TLSA 3 1 1 $(expected_data "$C/leaf.pem" 1 1)"
	if [ "$LINE" = "$want" ]; then
		ok "defaults: 3 1 1, port 443, tcp, first DNS SAN"
	else
		bad "defaults: got \"$LINE\", want \"$want\""
	fi
fi
if tlsa "explicit 3 1 1" --cert "$C/leaf.pem" --usage 3 --selector 1 --mtype 1 --port 443 --proto tcp; then
	check_record "explicit 3 1 1" "$OWNER" 3 1 1 "$(expected_data "$C/leaf.pem" 1 1)"
fi
if tlsa "--host and --port" --cert "$C/leaf.pem" --host mx.example.test --port 25; then
	check_record "--host and --port" _25._tcp.mx.example.test. 3 1 1 "$(expected_data "$C/leaf.pem" 1 1)"
fi
if tlsa "--host with trailing dot" --cert "$C/leaf.pem" --host www.example.test.; then
	check_record "--host with trailing dot" "$OWNER" 3 1 1 "$(expected_data "$C/leaf.pem" 1 1)"
fi
if tlsa "port 65535" --cert "$C/leaf.pem" --port 65535; then
	check_record "port 65535" _65535._tcp.www.example.test. 3 1 1 "$(expected_data "$C/leaf.pem" 1 1)"
fi
if tlsa "DANE-TA record for the intermediate" --cert "$C/int1.pem" --usage 2 --selector 0 --mtype 1 \
	--host www.example.test; then
	check_record "DANE-TA record for the intermediate" "$OWNER" 2 0 1 "$(expected_data "$C/int1.pem" 0 1)"
	echo "$LINE" >"$TMP/rec.txt"
	if "$BIN" verify --host www.example.test --chain "$C/chain-leaf2-int2-int1.pem" --tlsa-file "$TMP/rec.txt" \
		>/dev/null 2>&1; then
		ok "DANE-TA record verifies the depth-2 chain"
	else
		bad "DANE-TA record does not verify the depth-2 chain"
	fi
fi

# ------------------------------------------------------------------ bad input
bad_input "usage 9" --cert "$C/leaf.pem" --usage 9
bad_input "usage -1" --cert "$C/leaf.pem" --usage -1
bad_input "usage not a number" --cert "$C/leaf.pem" --usage three
bad_input "selector 2" --cert "$C/leaf.pem" --selector 2
bad_input "mtype 3" --cert "$C/leaf.pem" --mtype 3
bad_input "port 0" --cert "$C/leaf.pem" --port 0
bad_input "port 70000" --cert "$C/leaf.pem" --port 70000
bad_input "port 4294967739 (wraps to 443)" --cert "$C/leaf.pem" --port 4294967739
bad_input "port not a number" --cert "$C/leaf.pem" --port https
bad_input "missing file" --cert "$TMP/does-not-exist.pem"
printf 'not a certificate\n' >"$TMP/text.pem"
bad_input "non-PEM file" --cert "$TMP/text.pem"
: >"$TMP/empty.pem"
bad_input "empty file" --cert "$TMP/empty.pem"
head -n 4 "$C/leaf.pem" >"$TMP/truncated.pem"
bad_input "truncated PEM" --cert "$TMP/truncated.pem"
bad_input "missing --cert" --usage 3
bad_input "unknown option" --cert "$C/leaf.pem" --no-such-option

echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
