#!/bin/sh
# test-verify-cli.sh - tests of `daneproxy verify`: exit statuses (0 authenticated, 1 not, 2 bad input),
# the --json object, --tlsa-file parsing, records the DNS would call unusable (a warning, and --strict refuses
# them), --digests, output that stays printable and valid JSON, and bad input that must be refused with a
# message and no crash.
#
# Usage: test-verify-cli.sh /path/to/daneproxy
# Certificates come from ../certs/gen-certs.sh into a temporary directory removed on exit.
set -u

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
	echo "usage: $0 /path/to/daneproxy" >&2
	exit 2
fi
BIN=$1
HERE=$(cd "$(dirname "$0")" && pwd)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/daneproxy-cli-verify.XXXXXX") || exit 1
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

# Digests and data exactly as the OpenSSL command line computes them.
cert_der() { openssl x509 -in "$1" -outform DER; }
spki_der() { openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER; }
sha256() { openssl dgst -sha256 -r | cut -d' ' -f1; }
sha512() { openssl dgst -sha512 -r | cut -d' ' -f1; }
hex() { od -An -v -tx1 | tr -d ' \n'; }

LEAF_SPKI256=$(spki_der "$C/leaf.pem" | sha256)
LEAF_CERT256=$(cert_der "$C/leaf.pem" | sha256)
LEAF_SPKI512=$(spki_der "$C/leaf.pem" | sha512)
INT1_CERT256=$(cert_der "$C/int1.pem" | sha256)
INT1_FULL=$(cert_der "$C/int1.pem" | hex)
ROOT_SPKI256=$(spki_der "$C/root.pem" | sha256)
OTHER_SPKI256=$(spki_der "$C/other-root.pem" | sha256)
OTHER_SPKI512=$(spki_der "$C/other-root.pem" | sha512)
RSA_SPKI256=$(spki_der "$C/rsa-leaf.pem" | sha256)
WRONG_SPKI256=$(spki_der "$C/leaf-wrongname.pem" | sha256)
EXPIRED_SPKI256=$(spki_der "$C/leaf-expired.pem" | sha256)

# run DESC WANT ARGS... - run `daneproxy verify ARGS`, check the exit status; stdout in $TMP/out, stderr in $TMP/err.
# Bad input (WANT 2) must also say something on stderr.
run() {
	desc=$1
	want=$2
	shift 2
	"$BIN" verify "$@" >"$TMP/out" 2>"$TMP/err"
	rc=$?
	if [ "$rc" -ne "$want" ]; then
		bad "$desc: exit $rc, want $want"
		head -c 600 "$TMP/err" | sed 's/^/    stderr: /'
		head -c 600 "$TMP/out" | sed 's/^/    stdout: /'
		return
	fi
	if [ "$want" -eq 2 ] && [ ! -s "$TMP/err" ]; then
		bad "$desc: exit 2 but nothing on stderr"
		return
	fi
	ok "$desc"
}

# json DESC AUTH DEPTH RECORD USABLE [UNUSABLE] - check the --json object printed by the last run: one object,
# UTF-8, no raw control character. AUTH true|false, DEPTH an integer, null or any, RECORD "U S M HEX", null or
# any, USABLE and UNUSABLE integers (UNUSABLE unchecked when absent).
json() {
	if python3 - "$TMP/out" "$2" "$3" "$4" "$5" "${6:-any}" >"$TMP/pyerr" 2>&1 <<'EOF'
import json, sys
path, auth, depth, record, usable, unusable = sys.argv[1:]
with open(path, encoding="utf-8", errors="strict") as f:
    d = json.load(f)
problems = []
if not isinstance(d, dict):
    sys.exit("not a JSON object: %r" % (d,))
for key in ("authenticated", "depth", "record", "usable_records", "reason"):
    if key not in d:
        problems.append("missing key %s" % key)
if problems:
    sys.exit("; ".join(problems) + ": %r" % (d,))
if d["authenticated"] is not (auth == "true"):
    problems.append("authenticated=%r want %s" % (d["authenticated"], auth))
if type(d["depth"]) not in (int, type(None)):
    problems.append("depth=%r is neither an integer nor null" % (d["depth"],))
elif depth != "any" and d["depth"] != (None if depth == "null" else int(depth)):
    problems.append("depth=%r want %s" % (d["depth"], depth))
if d["record"] is not None and not isinstance(d["record"], str):
    problems.append("record=%r is neither a string nor null" % (d["record"],))
elif record == "any":
    pass
elif record == "null":
    if d["record"] is not None:
        problems.append("record=%r want null" % (d["record"],))
elif d["record"] is None or d["record"].lower().split() != record.lower().split():
    problems.append("record=%r want %r" % (d["record"], record))
if isinstance(d["usable_records"], bool) or d["usable_records"] != int(usable):
    problems.append("usable_records=%r want %s" % (d["usable_records"], usable))
if unusable != "any" and (isinstance(d.get("unusable_records"), bool) or d.get("unusable_records") != int(unusable)):
    problems.append("unusable_records=%r want %s" % (d.get("unusable_records"), unusable))
if not isinstance(d["reason"], str) or not d["reason"]:
    problems.append("reason=%r is not a non-empty string" % (d["reason"],))
if problems:
    sys.exit("; ".join(problems))
EOF
	then
		ok "$1: json"
	else
		bad "$1: json: $(tail -3 "$TMP/pyerr")"
		head -c 600 "$TMP/out" | sed 's/^/    stdout: /'
	fi
}

# said DESC FILE PATTERN - the last run wrote a line matching PATTERN (grep -E) to FILE (err or out).
said() {
	if grep -Eq -- "$3" "$TMP/$2"; then
		ok "$1"
	else
		bad "$1: $2 does not match /$3/"
		head -c 600 "$TMP/$2" | sed 's/^/    /'
	fi
}

# printable DESC - the last run wrote no control character (but newlines) and no byte that is not UTF-8.
printable() {
	if python3 - "$TMP/out" "$TMP/err" >"$TMP/pyerr" 2>&1 <<'EOF'
import sys
for path in sys.argv[1:]:
    text = open(path, "rb").read().decode("utf-8")
    bad = [hex(ord(c)) for c in text if (ord(c) < 0x20 and c != "\n") or 0x7f <= ord(c) <= 0x9f]
    if bad:
        sys.exit("%s: control characters %s" % (path, bad[:5]))
EOF
	then
		ok "$1: printable"
	else
		bad "$1: printable: $(tail -2 "$TMP/pyerr")"
	fi
}

# ------------------------------------------------------------------ verdicts
run "DANE-EE 3 1 1 matches" 0 --host www.example.test --chain "$C/chain-leaf-int1.pem" --tlsa "3 1 1 $LEAF_SPKI256"
run "DANE-EE 3 1 1 matches (json)" 0 --host www.example.test --chain "$C/chain-leaf-int1.pem" \
	--tlsa "3 1 1 $LEAF_SPKI256" --json
json "DANE-EE 3 1 1" true 0 "3 1 1 $LEAF_SPKI256" 1
run "DANE-EE 3 0 1 matches" 0 --host www.example.test --chain "$C/chain-leaf-int1.pem" --tlsa "3 0 1 $LEAF_CERT256"
run "DANE-EE 3 1 2 matches" 0 --host www.example.test --chain "$C/chain-leaf-int1.pem" --tlsa "3 1 2 $LEAF_SPKI512"
run "DANE-EE uppercase hex" 0 --host www.example.test --chain "$C/chain-leaf-int1.pem" \
	--tlsa "3 1 1 $(echo "$LEAF_SPKI256" | tr a-f A-F)"
run "DANE-EE on RSA leaf" 0 --host www.example.test --chain "$C/chain-rsa-leaf-int1.pem" --tlsa "3 1 1 $RSA_SPKI256"

run "no match" 1 --host www.example.test --chain "$C/chain-leaf-int1.pem" --tlsa "3 1 1 $OTHER_SPKI256" --json
json "no match" false null null 1

run "DANE-TA 2 0 1 at depth 1" 0 --host www.example.test --chain "$C/chain-leaf-int1.pem" \
	--tlsa "2 0 1 $INT1_CERT256" --json
json "DANE-TA depth 1" true 1 "2 0 1 $INT1_CERT256" 1
run "DANE-TA at depth 2" 0 --host www.example.test --chain "$C/chain-leaf2-int2-int1.pem" \
	--tlsa "2 0 1 $INT1_CERT256" --json
json "DANE-TA depth 2" true 2 "2 0 1 $INT1_CERT256" 1
run "DANE-TA 2 0 0 supplies the intermediate" 0 --host www.example.test --chain "$C/chain-leaf-only.pem" \
	--tlsa "2 0 0 $INT1_FULL" --json
json "DANE-TA 2 0 0" true 1 "2 0 0 $INT1_FULL" 1
run "DANE-TA 2 1 1 of root not sent: no match" 1 --host www.example.test --chain "$C/chain-leaf-int1.pem" \
	--tlsa "2 1 1 $ROOT_SPKI256"
run "DANE-TA name mismatch" 1 --host other.example.test --chain "$C/chain-leaf-int1.pem" \
	--tlsa "2 0 1 $INT1_CERT256" --json
json "DANE-TA name mismatch" false any any 1
run "DANE-TA expired leaf" 1 --host www.example.test --chain "$C/chain-expired-int1.pem" --tlsa "2 0 1 $INT1_CERT256"
run "DANE-EE expired leaf" 0 --host www.example.test --chain "$C/chain-expired-int1.pem" \
	--tlsa "3 1 1 $EXPIRED_SPKI256"

run "DANE-EE wrong name, no name check" 0 --host www.example.test --chain "$C/chain-wrongname-int1.pem" \
	--tlsa "3 1 1 $WRONG_SPKI256"
run "DANE-EE wrong name, --ee-namecheck" 1 --host www.example.test --chain "$C/chain-wrongname-int1.pem" \
	--tlsa "3 1 1 $WRONG_SPKI256" --ee-namecheck
run "DANE-EE right name, --ee-namecheck" 0 --host other.example.test --chain "$C/chain-wrongname-int1.pem" \
	--tlsa "3 1 1 $WRONG_SPKI256" --ee-namecheck

run "rollover: old and new record" 0 --host www.example.test --chain "$C/chain-leaf-int1.pem" \
	--tlsa "3 1 1 $OTHER_SPKI256" --tlsa "3 1 1 $LEAF_SPKI256" --json
json "rollover" true 0 "3 1 1 $LEAF_SPKI256" 2

cat >"$TMP/records.txt" <<EOF
; records for www.example.test, mixed formats

# an old key
3 1 1 $OTHER_SPKI256
_443._tcp.www.example.test. 3600 IN TLSA 2 0 1 $INT1_CERT256
   www.example.test. IN TLSA 4 1 1 $OTHER_SPKI256
EOF
run "--tlsa-file mixed formats" 0 --host www.example.test --chain "$C/chain-leaf-int1.pem" \
	--tlsa-file "$TMP/records.txt" --json
json "--tlsa-file mixed formats" true 1 "2 0 1 $INT1_CERT256" 2
printf '3 1 1 %s\n' "$LEAF_SPKI256" >"$TMP/one.txt"
run "--tlsa and --tlsa-file together" 0 --host www.example.test --chain "$C/chain-leaf-int1.pem" \
	--tlsa "3 1 1 $OTHER_SPKI256" --tlsa-file "$TMP/one.txt" --json
json "--tlsa and --tlsa-file together" true 0 "3 1 1 $LEAF_SPKI256" 2

run "PKIX-EE with --ca-file" 0 --host www.example.test --chain "$C/chain-leaf-int1.pem" \
	--tlsa "1 1 1 $LEAF_SPKI256" --ca-file "$C/root.pem" --json
json "PKIX-EE with --ca-file" true 0 "1 1 1 $LEAF_SPKI256" 1
run "PKIX-EE with an unrelated --ca-file" 1 --host www.example.test --chain "$C/chain-leaf-int1.pem" \
	--tlsa "1 1 1 $LEAF_SPKI256" --ca-file "$C/other-root.pem"
run "--smtp makes usage 1 unusable" 1 --host www.example.test --chain "$C/chain-leaf-int1.pem" \
	--tlsa "1 1 1 $LEAF_SPKI256" --ca-file "$C/root.pem" --smtp --json
json "--smtp" false null null 0
run "--smtp keeps DANE-EE" 0 --host www.example.test --chain "$C/chain-leaf-int1.pem" \
	--tlsa "3 1 1 $LEAF_SPKI256" --smtp
run "only unusable records" 1 --host www.example.test --chain "$C/chain-leaf-int1.pem" \
	--tlsa "4 1 1 $LEAF_SPKI256" --tlsa "3 2 1 $LEAF_SPKI256" --json
json "only unusable records" false null null 0

# ------------------------------------------------------------------ records the DNS would call unusable
# By default such a record is what it would be in the DNS: unusable, counted, warned about; the others decide.
run "wrong SHA-256 length alone: unusable" 1 --host www.example.test --chain "$C/chain-leaf-int1.pem" \
	--tlsa "3 1 1 abcd" --json
json "wrong SHA-256 length alone" false null null 0 1
said "wrong SHA-256 length: warning" err "warning: .*3 1 1 abcd.*unusable.*SHA-256 data is not 32 bytes"
run "wrong SHA-256 length beside a good record" 0 --host www.example.test --chain "$C/chain-leaf-int1.pem" \
	--tlsa "3 1 1 abcd" --tlsa "3 1 1 $LEAF_SPKI256" --json
json "wrong SHA-256 length beside a good record" true 0 "3 1 1 $LEAF_SPKI256" 1 1
run "wrong SHA-512 length beside a good SHA-256 record" 0 --host www.example.test --chain "$C/chain-leaf-int1.pem" \
	--tlsa "3 1 2 $LEAF_SPKI256" --tlsa "3 1 1 $LEAF_SPKI256" --json
json "wrong SHA-512 length beside a good record" true 0 "3 1 1 $LEAF_SPKI256" 1 1
said "wrong SHA-512 length: warning" err "warning: .*3 1 2 .*SHA-512 data is not 64 bytes"
run "full data that is no certificate" 1 --host www.example.test --chain "$C/chain-leaf-int1.pem" \
	--tlsa "2 0 0 3003020100" --json
json "full data that is no certificate" false null null 0 1
printf '3 1 1 abcd\n3 1 1 %s\n' "$LEAF_SPKI256" >"$TMP/shortdigest.txt"
run "--tlsa-file: wrong length on line 1" 0 --host www.example.test --chain "$C/chain-leaf-int1.pem" \
	--tlsa-file "$TMP/shortdigest.txt" --json
json "--tlsa-file: wrong length on line 1" true 0 "3 1 1 $LEAF_SPKI256" 1 1
said "--tlsa-file: the warning names file and line" err "shortdigest.txt:1: .*unusable"
run "unknown usage: a warning" 0 --host www.example.test --chain "$C/chain-leaf-int1.pem" \
	--tlsa "4 1 1 $LEAF_SPKI256" --tlsa "3 1 1 $LEAF_SPKI256"
said "unknown usage: warning" err "warning: .*unknown certificate usage"
run "no warning for usable records" 0 --host www.example.test --chain "$C/chain-leaf-int1.pem" \
	--tlsa "3 1 1 $LEAF_SPKI256"
if [ -s "$TMP/err" ]; then bad "no warning for usable records: stderr not empty"; else ok "nothing on stderr"; fi

# --strict: for records about to be published, every unusable record is an error (exit 2), as before.
run "--strict: wrong SHA-256 length" 2 --host www.example.test --chain "$C/chain-leaf-int1.pem" --tlsa "3 1 1 abcd" \
	--strict
said "--strict: wrong SHA-256 length says why" err "SHA-256 data is not 32 bytes"
run "--strict: wrong SHA-512 length" 2 --host www.example.test --chain "$C/chain-leaf-int1.pem" \
	--tlsa "3 1 2 $LEAF_SPKI256" --strict
run "--strict: wrong length beside a good record" 2 --host www.example.test --chain "$C/chain-leaf-int1.pem" \
	--strict --tlsa "3 1 1 $LEAF_SPKI256" --tlsa "3 1 1 abcd"
run "--strict: unknown usage" 2 --host www.example.test --chain "$C/chain-leaf-int1.pem" \
	--tlsa "4 1 1 $LEAF_SPKI256" --tlsa "3 1 1 $LEAF_SPKI256" --strict
run "--strict: full data that is no certificate" 2 --host www.example.test --chain "$C/chain-leaf-int1.pem" \
	--tlsa "2 0 0 3003020100" --strict
run "--strict: --tlsa-file names file and line" 2 --host www.example.test --chain "$C/chain-leaf-int1.pem" \
	--tlsa-file "$TMP/shortdigest.txt" --strict
said "--strict: file and line" err "shortdigest.txt:1: "
run "--strict: good records" 0 --host www.example.test --chain "$C/chain-leaf-int1.pem" \
	--tlsa "3 1 1 $LEAF_SPKI256" --tlsa "2 0 1 $INT1_CERT256" --strict
run "--strict: a digest left out by --digests is local policy, not an error" 1 --host www.example.test \
	--chain "$C/chain-leaf-int1.pem" --tlsa "3 1 1 $LEAF_SPKI256" --digests sha512 --strict --json
json "--strict with --digests sha512" false null null 0 1

# ------------------------------------------------------------------ --digests (RFC 7671 section 9)
# A SHA-512 decoy beside the real SHA-256 record: only the most preferred digest present is compared.
run "default: SHA-512 preferred" 1 --host www.example.test --chain "$C/chain-leaf-int1.pem" \
	--tlsa "3 1 2 $OTHER_SPKI512" --tlsa "3 1 1 $LEAF_SPKI256"
run "--digests sha256,sha512: SHA-256 preferred" 0 --host www.example.test --chain "$C/chain-leaf-int1.pem" \
	--tlsa "3 1 2 $OTHER_SPKI512" --tlsa "3 1 1 $LEAF_SPKI256" --digests sha256,sha512 --json
json "--digests sha256,sha512" true 0 "3 1 1 $LEAF_SPKI256" 2 0
run "--digests sha256: SHA-512 records unusable" 0 --host www.example.test --chain "$C/chain-leaf-int1.pem" \
	--tlsa "3 1 2 $OTHER_SPKI512" --tlsa "3 1 1 $LEAF_SPKI256" --digests sha256 --json
json "--digests sha256" true 0 "3 1 1 $LEAF_SPKI256" 1 1
said "--digests sha256: warning" err "warning: .*3 1 2 .*disabled by the digest preference"
run "--digests 'SHA512 sha256' (blanks, any case)" 1 --host www.example.test --chain "$C/chain-leaf-int1.pem" \
	--tlsa "3 1 2 $OTHER_SPKI512" --tlsa "3 1 1 $LEAF_SPKI256" --digests "SHA512 sha256"
run "--digests sha512 alone, SHA-256 record" 1 --host www.example.test --chain "$C/chain-leaf-int1.pem" \
	--tlsa "3 1 1 $LEAF_SPKI256" --digests sha512 --json
json "--digests sha512 alone" false null null 0 1
run "--digests md5" 2 --host www.example.test --chain "$C/chain-leaf-int1.pem" --tlsa "3 1 1 $LEAF_SPKI256" \
	--digests md5
said "--digests md5: why" err '--digests: "md5" is not sha256 or sha512'
run "--digests twice the same" 2 --host www.example.test --chain "$C/chain-leaf-int1.pem" \
	--tlsa "3 1 1 $LEAF_SPKI256" --digests sha256,sha256
run "--digests empty" 2 --host www.example.test --chain "$C/chain-leaf-int1.pem" --tlsa "3 1 1 $LEAF_SPKI256" \
	--digests ""

# ------------------------------------------------------------------ printable output (issue 9, finding 14)
# A host name with control characters or bytes that are not UTF-8 is bad input, shown escaped.
run "host with an escape sequence" 2 --host "$(printf 'www\033[31m.example.test')" --chain "$C/chain-leaf-int1.pem" \
	--tlsa "3 1 1 $LEAF_SPKI256"
said "host with an escape sequence: shown escaped" err 'www\\x1b\[31m\.example\.test'
printable "host with an escape sequence"
run "host with an escape sequence (json)" 2 --host "$(printf 'www\033[31m.example.test')" \
	--chain "$C/chain-leaf-int1.pem" --tlsa "3 1 1 $LEAF_SPKI256" --json
printable "host with an escape sequence (json)"
run "host that is not UTF-8" 2 --host "$(printf 'www\377.example.test')" --chain "$C/chain-leaf-int1.pem" \
	--tlsa "3 1 1 $LEAF_SPKI256" --json
said "host that is not UTF-8: shown escaped" err 'www\\xff\.example\.test'
printable "host that is not UTF-8"
run "host with a newline" 2 --host "$(printf 'www.example.test\nX-Injected: 1')" --chain "$C/chain-leaf-int1.pem" \
	--tlsa "3 1 1 $LEAF_SPKI256"
said "host with a newline: kept on one line" err 'www\.example\.test\\x0aX-Injected'
run "host with a blank" 2 --host "www example.test" --chain "$C/chain-leaf-int1.pem" --tlsa "3 1 1 $LEAF_SPKI256"
run "host in capitals with a trailing dot" 0 --host "WWW.Example.TEST." --chain "$C/chain-leaf-int1.pem" \
	--tlsa "2 0 1 $INT1_CERT256"
run "host that is an IP address" 0 --host 127.0.0.1 --chain "$C/chain-ip-int1.pem" --tlsa "2 0 1 $INT1_CERT256"
# A certificate subject with ESC, DEL and bytes that are not UTF-8, quoted in the explanation.
run "hostile subject (text)" 1 --host www.example.test --chain "$C/chain-ctrl-int1.pem" --tlsa "2 0 1 $INT1_CERT256"
printable "hostile subject (text)"
said "hostile subject (text): escaped" out 'evil\\x1b\[31m\\x7f\\xff\\xfe'
run "hostile subject (json)" 1 --host www.example.test --chain "$C/chain-ctrl-int1.pem" --tlsa "2 0 1 $INT1_CERT256" \
	--json
json "hostile subject" false 1 "2 0 1 $INT1_CERT256" 1 0
printable "hostile subject (json)"

# ------------------------------------------------------------------ bad input: exit 2, a message, no crash
run "missing chain file" 2 --host www.example.test --chain "$TMP/does-not-exist.pem" --tlsa "3 1 1 $LEAF_SPKI256"
run "chain is a directory" 2 --host www.example.test --chain "$TMP" --tlsa "3 1 1 $LEAF_SPKI256"
head -n 4 "$C/leaf.pem" >"$TMP/truncated.pem"
run "truncated PEM (BEGIN without END)" 2 --host www.example.test --chain "$TMP/truncated.pem" \
	--tlsa "3 1 1 $LEAF_SPKI256"
{ cat "$C/int1.pem"; head -n 3 "$C/leaf.pem"; } >"$TMP/truncated2.pem"
run "truncated second certificate" 2 --host www.example.test --chain "$TMP/truncated2.pem" \
	--tlsa "3 1 1 $LEAF_SPKI256"
printf 'hello, this is not PEM\n' >"$TMP/text.pem"
run "non-PEM file" 2 --host www.example.test --chain "$TMP/text.pem" --tlsa "3 1 1 $LEAF_SPKI256"
: >"$TMP/empty.pem"
run "empty chain file" 2 --host www.example.test --chain "$TMP/empty.pem" --tlsa "3 1 1 $LEAF_SPKI256"
run "odd-length hex" 2 --host www.example.test --chain "$C/chain-leaf-int1.pem" --tlsa "3 1 0 abc"
run "non-hex data" 2 --host www.example.test --chain "$C/chain-leaf-int1.pem" \
	--tlsa "3 1 1 zz$(echo "$LEAF_SPKI256" | cut -c3-)"
run "field over 255" 2 --host www.example.test --chain "$C/chain-leaf-int1.pem" --tlsa "259 1 1 $LEAF_SPKI256"
run "missing fields" 2 --host www.example.test --chain "$C/chain-leaf-int1.pem" --tlsa "3 1"
# One argument may not exceed 128 KiB (MAX_ARG_STRLEN); 120 000 characters is as absurd as it gets.
LONG=$(head -c 120000 /dev/zero | tr '\0' 'a')
# 60 000 bytes of SHA-256 data: a record the DNS would call unusable, so a warning (and bad input under --strict).
run "absurdly long --tlsa (120 kB hex)" 1 --host www.example.test --chain "$C/chain-leaf-int1.pem" \
	--tlsa "3 1 1 $LONG"
said "absurdly long --tlsa: warning" err "warning: .*unusable.*SHA-256 data is not 32 bytes"
run "absurdly long --tlsa (120 kB hex), --strict" 2 --host www.example.test --chain "$C/chain-leaf-int1.pem" \
	--tlsa "3 1 1 $LONG" --strict
run "absurdly long --tlsa (120 kB digits)" 2 --host www.example.test --chain "$C/chain-leaf-int1.pem" \
	--tlsa "$(head -c 120000 /dev/zero | tr '\0' '3')"
{ printf '3 0 0 '; head -c 1048576 /dev/zero | tr '\0' 'f'; printf '\n'; } >"$TMP/huge.txt"
run "1 MB line in --tlsa-file" 2 --host www.example.test --chain "$C/chain-leaf-int1.pem" --tlsa-file "$TMP/huge.txt"
printf '3 1 1 %s\n3 1 1 nothex\n' "$LEAF_SPKI256" >"$TMP/badline.txt"
run "malformed line in --tlsa-file" 2 --host www.example.test --chain "$C/chain-leaf-int1.pem" \
	--tlsa-file "$TMP/badline.txt"
run "missing --tlsa-file" 2 --host www.example.test --chain "$C/chain-leaf-int1.pem" --tlsa-file "$TMP/nope.txt"
run "missing --ca-file" 2 --host www.example.test --chain "$C/chain-leaf-int1.pem" \
	--tlsa "1 1 1 $LEAF_SPKI256" --ca-file "$TMP/nope.pem"
run "non-PEM --ca-file" 2 --host www.example.test --chain "$C/chain-leaf-int1.pem" \
	--tlsa "1 1 1 $LEAF_SPKI256" --ca-file "$TMP/text.pem"
run "unknown option" 2 --host www.example.test --chain "$C/chain-leaf-int1.pem" --tlsa "3 1 1 $LEAF_SPKI256" \
	--no-such-option
run "missing --host" 2 --chain "$C/chain-leaf-int1.pem" --tlsa "3 1 1 $LEAF_SPKI256"
run "missing --chain" 2 --host www.example.test --tlsa "3 1 1 $LEAF_SPKI256"
run "--tlsa without its value" 2 --host www.example.test --chain "$C/chain-leaf-int1.pem" --tlsa

echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
