#!/usr/bin/env bash
# shellcheck disable=SC2015  # "a && b || fail" is intended
# Self test of the DNSSEC test bed: start it in a temporary directory, check
# every case with drill (plain queries and signature chasing to the root DS),
# check the certificates, check that a failed start leaves nothing behind,
# stop it and check that no NSD process of it remains.
#
#   tests/testbed/selftest.sh        exit 0 when every check passes
#
# Prints one line per check and a final "N passed, N failed".

# `sh selftest.sh` works too: the checks need bash.
if [ -z "${BASH_VERSION:-}" ]; then
	exec bash "$0" "$@"
fi
set -eu
set -o pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "$0")" && pwd -P)
TB=$HERE/testbed.sh
PASS=0
FAIL=0
DIR=
DIR2=

ok() {
	PASS=$((PASS + 1))
	printf 'ok   %s\n' "$1"
}

bad() {
	FAIL=$((FAIL + 1))
	printf 'FAIL %s\n' "$1"
	if [ $# -gt 1 ] && [ -n "$2" ]; then
		printf '%s\n' "$2" | sed 's/^/     | /' | head -n 40
	fi
}

# check NAME COMMAND...: run a shell function/command, record the result.
check() {
	local name=$1 out
	shift
	if out=$("$@" 2>&1); then
		ok "$name"
	else
		bad "$name" "$out"
	fi
}

cleanup() {
	local rc=$?
	if [ -n "$DIR2" ]; then
		"$TB" stop "$DIR2" >/dev/null 2>&1 || true
		rm -rf "$DIR2"
	fi
	if [ -n "$DIR" ]; then
		"$TB" stop "$DIR" >/dev/null 2>&1 || true
		rm -rf "$DIR"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

for c in nsd drill openssl; do
	if ! command -v "$c" >/dev/null 2>&1; then
		printf 'selftest: %s not installed\n0 passed, 1 failed\n' "$c"
		exit 1
	fi
done

# Processes (non-zombie) whose command line mentions $1.
procs_of() {
	local f pid state rest cmd
	for f in /proc/[0-9]*/cmdline; do
		pid=${f#/proc/}
		pid=${pid%/cmdline}
		[ "$pid" != "$$" ] || continue
		cmd=$(tr '\0' ' ' <"$f" 2>/dev/null) || continue
		case $cmd in
			*"$1"*) ;;
			*) continue ;;
		esac
		rest=$( { cat "/proc/$pid/stat"; } 2>/dev/null) || continue
		rest=${rest##*) }
		state=${rest%% *}
		[ "$state" = Z ] || printf '%s %s\n' "$pid" "$cmd"
	done
}

DIR=$(mktemp -d "${TMPDIR:-/tmp}/daneproxy-testbed.XXXXXX")
DIR=$(cd "$DIR" && pwd -P)

# --------------------------------------------------------------------------
# start
t0=$(date +%s%N)
if START_OUT=$("$TB" start "$DIR" </dev/null 2>&1); then
	t1=$(date +%s%N)
	START_MS=$(((t1 - t0) / 1000000))
	ok "start ($START_MS ms)"
else
	bad "start" "$START_OUT"
	printf '%d passed, %d failed\n' "$PASS" "$FAIL"
	exit 1
fi

ENV=$DIR/testbed.env
env_ok() {
	local k v
	[ -r "$ENV" ] || { echo "no $ENV"; return 1; }
	for k in TESTBED_DNS_ADDR TESTBED_DNS_PORT TESTBED_RESOLVER TESTBED_TRUST_ANCHOR TESTBED_ZONE \
		TESTBED_DIR TESTBED_NSD_PID TESTBED_CA_CERT TESTBED_LEAF_CERT TESTBED_LEAF_KEY TESTBED_CHAIN \
		TESTBED_SELFSIGNED_CERT TESTBED_SELFSIGNED_KEY TESTBED_TLS_PORT TESTBED_TLSA_PORTS TESTBED_CASES \
		TESTBED_SMTP_PORT TESTBED_SMTP_TLSA_PORTS TESTBED_MAIL_CASES TESTBED_MXHOST_CASES; do
		grep -q "^$k=[^[:space:]\"']*\$" "$ENV" || { echo "missing or malformed $k"; return 1; }
	done
	# every line KEY=VALUE without quotes or spaces
	if grep -v '^[A-Z0-9_]*=[^[:space:]"'"'"']*$' "$ENV"; then
		echo "malformed lines above"
		return 1
	fi
	# shellcheck disable=SC1090
	. "$ENV"
	[ "$TESTBED_DNS_ADDR" = 127.0.0.1 ] || { echo "addr $TESTBED_DNS_ADDR"; return 1; }
	[ "$TESTBED_RESOLVER" = "127.0.0.1@$TESTBED_DNS_PORT" ] || { echo "resolver $TESTBED_RESOLVER"; return 1; }
	[ "$TESTBED_DNS_PORT" -lt 32768 ] && [ "$TESTBED_DNS_PORT" -ne 5353 ] || { echo "port $TESTBED_DNS_PORT"; return 1; }
	for k in ${TESTBED_CASES//,/ }; do
		for v in HOST EXPECT_ADDR EXPECT_TLSA; do
			grep -q "^TESTBED_${v}_$k=." "$ENV" || { echo "missing TESTBED_${v}_$k"; return 1; }
		done
	done
	[ "$START_OUT" = "$(cat "$ENV")" ] || { echo "start output differs from $ENV"; return 1; }
}
check "testbed.env well formed" env_ok
# shellcheck disable=SC1090
. "$ENV"
P=$TESTBED_DNS_PORT
TA=$TESTBED_TRUST_ANCHOR

# Query helpers -------------------------------------------------------------
q() { drill -p "$P" @127.0.0.1 "$@" 2>&1 || true; }            # plain
qd() { drill -D -p "$P" @127.0.0.1 "$@" 2>&1 || true; }        # with DO bit
chase() { drill -k "$TA" -S -p "$P" @127.0.0.1 "$@" 2>&1; }    # validate to the root DS
rcode_of() { sed -n 's/.*rcode: \([A-Z]*\),.*/\1/p' | head -n 1; }
flags_of() { sed -n 's/^;; flags: \([a-z ]*\);.*/\1/p' | head -n 1; }
# Records of TYPE in the answer section.
answer_count() {
	awk -v t="$1" '/^;; ANSWER SECTION:/{a=1;next} /^;; [A-Z]+ SECTION:/{a=0} a && $4==t {n++} END{print n+0}'
}
authority_has() {
	awk -v t="$1" '/^;; AUTHORITY SECTION:/{a=1;next} /^;; [A-Z]+ SECTION:/{a=0} a && $4==t {f=1} END{exit !f}'
}

expect_secure() { # name type
	local out
	out=$(chase "$1" "$2") || { echo "$out"; return 1; }
	case $out in *"Chase successful"*) ;; *) echo "$out"; return 1 ;; esac
	case $out in *"Existence is denied"*) echo "$out"; echo "(expected data, got denial)"; return 1 ;; esac
}

expect_secure_denial() { # name type rcode proof-type
	local out
	out=$(qd "$1" "$2")
	[ "$(rcode_of <<<"$out")" = "$3" ] || { echo "$out"; echo "(expected rcode $3)"; return 1; }
	[ "$(answer_count "$2" <<<"$out")" = 0 ] || { echo "$out"; echo "(expected no $2)"; return 1; }
	authority_has "$4" <<<"$out" || { echo "$out"; echo "(expected $4 proof)"; return 1; }
	authority_has RRSIG <<<"$out" || { echo "$out"; echo "(expected RRSIG)"; return 1; }
	out=$(chase "$1" "$2") || { echo "$out"; return 1; }
	# drill prints "Existence is denied by:" for NSEC and NSEC3 proofs alike
	case $out in *"Existence is denied by"*"Chase successful"*) ;; *) echo "$out"; return 1 ;; esac
}

# Validation fails (drill -S exits non-zero) with a message matching $3.
expect_bogus() { # name type pattern
	local out rc=0
	out=$(chase "$1" "$2") || rc=$?
	[ "$rc" -ne 0 ] || { echo "$out"; echo "(chase succeeded, expected bogus)"; return 1; }
	case $out in *$3*) ;; *) echo "$out"; echo "(expected '$3')"; return 1 ;; esac
}

# --------------------------------------------------------------------------
# secure
www_tlsa() {
	local out n
	out=$(qd "_443._tcp.$TESTBED_HOST_SECURE" TLSA)
	[ "$(rcode_of <<<"$out")" = NOERROR ] || { echo "$out"; return 1; }
	n=$(answer_count TLSA <<<"$out")
	[ "$n" = 2 ] || { echo "$out"; echo "(expected 2 TLSA, got $n)"; return 1; }
	[ "$(answer_count RRSIG <<<"$out")" = 1 ] || { echo "$out"; echo "(expected RRSIG)"; return 1; }
	grep -q "TLSA[[:space:]]3 1 1 $TESTBED_LEAF_SPKI_SHA256\$" <<<"$out" || { echo "$out"; echo "(no 3 1 1 leaf)"; return 1; }
	grep -q "TLSA[[:space:]]2 0 1 $TESTBED_CA_CERT_SHA256\$" <<<"$out" || { echo "$out"; echo "(no 2 0 1 CA)"; return 1; }
	expect_secure "_443._tcp.$TESTBED_HOST_SECURE" TLSA
}
check "secure: www TLSA RRset with RRSIG validates to the root DS" www_tlsa
check "secure: www A validates" expect_secure "$TESTBED_HOST_SECURE" A
check "secure: www AAAA validates" expect_secure "$TESTBED_HOST_SECURE" AAAA
www_addrs() {
	local out
	out=$(q "$TESTBED_HOST_SECURE" A)
	grep -q "IN[[:space:]]A[[:space:]]127\.0\.0\.1\$" <<<"$out" || { echo "$out"; return 1; }
	out=$(q "$TESTBED_HOST_SECURE" AAAA)
	grep -q "IN[[:space:]]AAAA[[:space:]]::1\$" <<<"$out" || { echo "$out"; return 1; }
}
check "secure: www has A 127.0.0.1 and AAAA ::1" www_addrs
tls_ports() {
	local p out
	for p in ${TESTBED_TLSA_PORTS//,/ }; do
		out=$(qd "_$p._tcp.$TESTBED_HOST_SECURE" TLSA)
		[ "$(answer_count TLSA <<<"$out")" = 2 ] || { echo "$out"; echo "(port $p)"; return 1; }
	done
}
check "secure: TLSA published at every port of TESTBED_TLSA_PORTS" tls_ports
dnskey_anchor_ok() {
	local out
	out=$(drill -k "$TESTBED_TRUST_ANCHOR_DNSKEY" -S -p "$P" @127.0.0.1 "$TESTBED_HOST_SECURE" A 2>&1) || { echo "$out"; return 1; }
	case $out in *"Chase successful"*) ;; *) echo "$out"; return 1 ;; esac
}
check "trust anchor as DNSKEY works too" dnskey_anchor_ok

# secure denial
check "secure-nxdomain: nx A is NXDOMAIN with NSEC proof" expect_secure_denial "$TESTBED_HOST_NXDOMAIN" A NXDOMAIN NSEC
check "secure-nxdomain: nx TLSA is NXDOMAIN with NSEC proof" expect_secure_denial "_443._tcp.$TESTBED_HOST_NXDOMAIN" TLSA NXDOMAIN NSEC
check "secure-nodata: notlsa A validates" expect_secure "$TESTBED_HOST_NODATA" A
check "secure-nodata: notlsa TLSA is NODATA with NSEC proof" expect_secure_denial "_443._tcp.$TESTBED_HOST_NODATA" TLSA NOERROR NSEC
check "secure-nxdomain: nolabel TLSA is NXDOMAIN with NSEC proof" expect_secure_denial "_443._tcp.$TESTBED_HOST_NOLABEL" TLSA NXDOMAIN NSEC
check "nsec3: www.nsec3 TLSA validates" expect_secure "_443._tcp.$TESTBED_HOST_NSEC3" TLSA
check "nsec3: nx.nsec3 A is NXDOMAIN with NSEC3 proof" expect_secure_denial "$TESTBED_HOST_NSEC3_NX" A NXDOMAIN NSEC3

# insecure
insecure_ok() {
	local child=${TESTBED_HOST_INSECURE#www.} out
	# no DS in the parent, absence proven
	expect_secure_denial "$child" DS NOERROR NSEC || return 1
	out=$(qd "$child" DNSKEY)
	[ "$(answer_count DNSKEY <<<"$out")" = 0 ] || { echo "$out"; echo "(unsigned zone has DNSKEY)"; return 1; }
	out=$(qd "_443._tcp.$TESTBED_HOST_INSECURE" TLSA)
	[ "$(answer_count TLSA <<<"$out")" = 2 ] || { echo "$out"; echo "(expected 2 TLSA)"; return 1; }
	[ "$(answer_count RRSIG <<<"$out")" = 0 ] || { echo "$out"; echo "(expected no RRSIG)"; return 1; }
	out=$(chase "$TESTBED_HOST_INSECURE" A) && { echo "$out"; echo "(chase of unsigned data succeeded)"; return 1; }
	return 0
}
check "insecure: child has no DS (proven), unsigned A/TLSA" insecure_ok

# bogus
check "bogus: expired TLSA fails validation (signature expired)" expect_bogus "_443._tcp.$TESTBED_HOST_EXPIRED" TLSA expired
check "bogus: expired A fails validation (signature expired)" expect_bogus "$TESTBED_HOST_EXPIRED" A expired
baddsl_ok() {
	local child=${TESTBED_HOST_BADDS#www.} out ds_tag key_tags
	# the parent publishes a validly signed DS ...
	out=$(chase "$child" DS) || { echo "$out"; return 1; }
	case $out in *"Existence is denied"*) echo "$out"; echo "(no DS)"; return 1 ;; esac
	out=$(q "$child" DS)
	ds_tag=$(awk '$4=="DS"{print $5}' <<<"$out")
	[ -n "$ds_tag" ] || { echo "$out"; return 1; }
	# ... for a key the child does not have
	out=$(q "$child" DNSKEY)
	key_tags=$(sed -n 's/.*id = \([0-9]*\).*/\1/p' <<<"$out")
	[ -n "$key_tags" ] || { echo "$out"; echo "(child has no DNSKEY)"; return 1; }
	if grep -qx "$ds_tag" <<<"$key_tags"; then
		echo "DS tag $ds_tag matches a child key"
		return 1
	fi
	expect_bogus "_443._tcp.$TESTBED_HOST_BADDS" TLSA "Chase failed"
}
check "bogus: baddsl has a signed DS matching no child key, TLSA fails validation" baddsl_ok
check "bogus: altered TLSA fails validation (bogus signature)" expect_bogus "_443._tcp.$TESTBED_HOST_ALTERED" TLSA "Bogus DNSSEC signature"
altered_data() {
	local out
	out=$(q "_443._tcp.$TESTBED_HOST_ALTERED" TLSA)
	grep -q "3 1 1 $TESTBED_LEAF_SPKI_SHA256\$" <<<"$out" || { echo "$out"; echo "(altered data should match the leaf)"; return 1; }
}
check "bogus: altered TLSA data matches the leaf (so only validation rejects it)" altered_data
check "altered: www.altered A still validates" expect_secure "$TESTBED_HOST_ALTERED" A

# CNAME chains
cname_ok() { # name target chase-target-ok
	local out
	out=$(qd "$1" A)
	grep -q "CNAME[[:space:]]$2\.\$" <<<"$out" || { echo "$out"; echo "(no CNAME to $2)"; return 1; }
	expect_secure "$1" CNAME || return 1
	if [ "$3" = secure ]; then
		expect_secure "$2" A
	else
		out=$(chase "$2" A) && { echo "$out"; echo "(target validated, expected insecure)"; return 1; }
		out=$(qd "$2" A)
		[ "$(answer_count A <<<"$out")" = 1 ] && [ "$(answer_count RRSIG <<<"$out")" = 0 ] || { echo "$out"; return 1; }
	fi
}
check "cname: cname-secure -> www.dane.test, both secure" cname_ok "$TESTBED_HOST_CNAME_SECURE" "$TESTBED_TARGET_CNAME_SECURE" secure
check "cname: cname-insecure (secure) -> www.insecure.dane.test (insecure)" cname_ok "$TESTBED_HOST_CNAME_INSECURE" "$TESTBED_TARGET_CNAME_INSECURE" insecure

# truncation
big_ok() {
	local out n
	out=$(qd "_443._tcp.$TESTBED_HOST_BIG" TLSA)
	case " $(flags_of <<<"$out") " in *" tc "*) ;; *) echo "$out"; echo "(no TC over UDP)"; return 1 ;; esac
	out=$(drill -t -D -p "$P" @127.0.0.1 "_443._tcp.$TESTBED_HOST_BIG" TLSA 2>&1) || { echo "$out"; return 1; }
	n=$(answer_count TLSA <<<"$out")
	[ "$n" -ge 40 ] || { echo "$out"; echo "(expected >= 40 TLSA over TCP, got $n)"; return 1; }
	grep -q "3 1 1 $TESTBED_LEAF_SPKI_SHA256\$" <<<"$out" || { echo "(leaf record missing)"; return 1; }
	out=$(drill -t -k "$TA" -S -p "$P" @127.0.0.1 "_443._tcp.$TESTBED_HOST_BIG" TLSA 2>&1) || { echo "$out"; return 1; }
	case $out in *"Chase successful"*) ;; *) echo "$out"; return 1 ;; esac
}
check "big: TLSA truncated over UDP (TC), 40 records validate over TCP" big_ok

unusable_ok() {
	local out
	out=$(qd "_443._tcp.$TESTBED_HOST_UNUSABLE" TLSA)
	if awk '$4=="TLSA" && (($5==3 && $6==1 && $7==1 && length($8)==64) || ($5==2 && $6==0 && $7==1)) {f=1} END{exit !f}' <<<"$out"; then
		echo "$out"
		echo "(found a usable-looking record)"
		return 1
	fi
	[ "$(answer_count TLSA <<<"$out")" -ge 5 ] || { echo "$out"; return 1; }
	expect_secure "_443._tcp.$TESTBED_HOST_UNUSABLE" TLSA
}
check "unusable: secure TLSA RRset of unusable records" unusable_ok
shortttl_ok() {
	local out
	out=$(q "$TESTBED_HOST_SHORTTTL" A)
	grep -q "[[:space:]]2[[:space:]]IN[[:space:]]A[[:space:]]" <<<"$out" || { echo "$out"; return 1; }
}
check "shortttl: TTL 2" shortttl_ok
others_ok() {
	local c h
	for c in EE TA TAFULL MISMATCH SELFSIGNED PKIX_EE PKIX_TA SHA512 AGILITY SHORTTTL; do
		h=$(sed -n "s/^TESTBED_HOST_$c=//p" "$ENV")
		expect_secure "_443._tcp.$h" TLSA || { echo "($c)"; return 1; }
	done
}
check "usage variants: ee/ta/tafull/mismatch/selfsigned/pkix-*/sha512/agility/shortttl TLSA validate" others_ok

# mail cases: every MX lookup and MX host as the table in testbed.env says
mx_list_of() { # domain -> "pref:host,..." as drill shows the MX RRset (after CNAME expansion), sorted
	awk '/^;; ANSWER SECTION:/{a=1;next} /^;; [A-Z]+ SECTION:/{a=0} a && $4=="MX" {h=$6; if (h != ".") sub(/\.$/, "", h); print $5 ":" h}' |
		sort -t: -k1,1n -k2,2 | paste -sd, -
}
mail_cases_ok() {
	local id d e want out got t
	[ -n "${TESTBED_MAIL_CASES:-}" ] || { echo "no TESTBED_MAIL_CASES"; return 1; }
	for id in ${TESTBED_MAIL_CASES//,/ }; do
		d=$(sed -n "s/^TESTBED_MAIL_DOMAIN_$id=//p" "$ENV")
		e=$(sed -n "s/^TESTBED_EXPECT_MX_$id=//p" "$ENV")
		want=$(sed -n "s/^TESTBED_MX_$id=//p" "$ENV")
		[ -n "$d" ] && [ -n "$e" ] || { echo "$id: incomplete"; return 1; }
		case $e in
			secure)
				expect_secure "$d" MX >/dev/null || { echo "$id $d: MX does not validate"; return 1; } ;;
			secure-nodata)
				expect_secure_denial "$d" MX NOERROR NSEC >/dev/null || { echo "$id $d: no proven NODATA"; return 1; } ;;
			secure-nxdomain)
				expect_secure_denial "$d" MX NXDOMAIN NSEC >/dev/null || { echo "$id $d: no proven NXDOMAIN"; return 1; } ;;
			insecure)
				out=$(qd "$d" MX)
				grep -q "[[:space:]]RRSIG[[:space:]]MX[[:space:]]" <<<"$out" && { echo "$id $d: unsigned MX has an RRSIG"; return 1; }
				# drill -S chases only the first RRset: through a (signed) CNAME, chase the target's MX
				t=$(awk '/^;; ANSWER SECTION:/{a=1;next} /^;; [A-Z]+ SECTION:/{a=0} a && $4=="CNAME" {print $5}' <<<"$out" | tail -n 1)
				chase "${t:-$d}" MX >/dev/null 2>&1 && { echo "$id ${t:-$d}: chase of unsigned MX succeeded"; return 1; } ;;
			bogus)
				expect_bogus "$d" MX expired >/dev/null || { echo "$id $d: MX is not bogus"; return 1; } ;;
			*) echo "$id: unknown expectation $e"; return 1 ;;
		esac
		got=$(q "$d" MX | mx_list_of)
		[ "$got" = "$want" ] || { echo "$id $d: MX list '$got', want '$want'"; return 1; }
	done
}
check "mail: every MX lookup has its outcome and MX list" mail_cases_ok
mx_hosts_ok() {
	local id h ip ea et out p
	for id in ${TESTBED_MXHOST_CASES//,/ }; do
		h=$(sed -n "s/^TESTBED_MXHOST_$id=//p" "$ENV")
		ip=$(sed -n "s/^TESTBED_MXHOST_ADDR_$id=//p" "$ENV")
		ea=$(sed -n "s/^TESTBED_EXPECT_MXHOST_ADDR_$id=//p" "$ENV")
		et=$(sed -n "s/^TESTBED_EXPECT_MXHOST_TLSA_$id=//p" "$ENV")
		out=$(q "$h" A)
		grep -q "IN[[:space:]]A[[:space:]]${ip//./\\.}\$" <<<"$out" || { echo "$id $h: no A $ip"; echo "$out"; return 1; }
		[ "$(q "$h" AAAA | answer_count AAAA)" = 0 ] || { echo "$id $h: has AAAA"; return 1; }
		case $ea in
			secure) expect_secure "$h" A >/dev/null || { echo "$id $h: A does not validate"; return 1; } ;;
			bogus) expect_bogus "$h" A expired >/dev/null || { echo "$id $h: A is not bogus"; return 1; } ;;
			insecure) chase "$h" A >/dev/null 2>&1 && { echo "$id $h: unsigned A validates"; return 1; } ;;
		esac
		for p in ${TESTBED_SMTP_TLSA_PORTS//,/ }; do
			case $et in
				secure) expect_secure "_$p._tcp.$h" TLSA >/dev/null || { echo "$id: _$p._tcp.$h TLSA does not validate"; return 1; } ;;
				secure-nxdomain) expect_secure_denial "_$p._tcp.$h" TLSA NXDOMAIN NSEC >/dev/null || { echo "$id: _$p._tcp.$h not a proven NXDOMAIN"; return 1; } ;;
				bogus) chase "_$p._tcp.$h" TLSA >/dev/null 2>&1 && { echo "$id: _$p._tcp.$h TLSA validates"; return 1; } ;;
				insecure) chase "_$p._tcp.$h" TLSA >/dev/null 2>&1 && { echo "$id: unsigned TLSA validates"; return 1; } ;;
			esac
		done
	done
	# only the SMTP ports: an MX host has no TLSA at 443
	[ "$(qd "_443._tcp.$TESTBED_MXHOST_MX1" TLSA | answer_count TLSA)" = 0 ] || { echo "mx1 has TLSA at 443"; return 1; }
	[ "${TESTBED_SMTP_TLSA_PORTS%%,*}" = 25 ] || { echo "TESTBED_SMTP_TLSA_PORTS does not start with 25"; return 1; }
}
check "mail: every MX host has its one address and TLSA at 25 and TESTBED_SMTP_PORT" mx_hosts_ok
mx_tlsa_data_ok() {
	local out
	out=$(q "_25._tcp.$TESTBED_MXHOST_MX_UNUSABLE" TLSA)
	awk '$4=="TLSA" && $5==3 && $6==1 && $7==1 && length($8)==64 {f=1} $4=="TLSA" && $5==2 {f=1} END{exit f}' <<<"$out" ||
		{ echo "$out"; echo "(mx-unusable has an SMTP-usable record)"; return 1; }
	out=$(q "_25._tcp.$TESTBED_MXHOST_MX_BOGUS_TLSA" TLSA)
	grep -q "3 1 1 $TESTBED_LEAF_SPKI_SHA256\$" <<<"$out" || { echo "$out"; echo "(altered MX TLSA should match the leaf)"; return 1; }
	out=$(q "_25._tcp.$TESTBED_MXHOST_MX_SELFSIGNED" TLSA)
	grep -q "3 1 1 $TESTBED_SELFSIGNED_SPKI_SHA256\$" <<<"$out" || { echo "$out"; return 1; }
	openssl x509 -in "$TESTBED_LEAF_CERT" -noout -checkhost "$TESTBED_MXHOST_MX_TA" | grep -q 'does NOT match' ||
		{ echo "the leaf should not name $TESTBED_MXHOST_MX_TA"; return 1; }
	openssl x509 -in "$TESTBED_LEAF_CERT" -noout -checkhost "$TESTBED_MAIL_DOMAIN_TA" | grep -q 'does match' ||
		{ echo "the leaf should name $TESTBED_MAIL_DOMAIN_TA"; return 1; }
}
check "mail: unusable, altered, self-signed and DANE-TA name cases hold what they claim" mx_tlsa_data_ok

# certificates
certs_ok() {
	local spki cadig out
	openssl verify -CAfile "$TESTBED_CA_CERT" "$TESTBED_LEAF_CERT" || return 1
	openssl verify -CAfile "$TESTBED_CA_CERT" -untrusted "$TESTBED_CHAIN" "$TESTBED_LEAF_CERT" || return 1
	openssl x509 -in "$TESTBED_LEAF_CERT" -noout -checkhost "$TESTBED_HOST_SECURE" | grep -q 'does match' || return 1
	openssl x509 -in "$TESTBED_LEAF_CERT" -noout -checkhost "$TESTBED_HOST_INSECURE" | grep -q 'does match' || return 1
	openssl x509 -in "$TESTBED_CA_CERT" -noout -text | grep -q 'CA:TRUE' || return 1
	spki=$(openssl x509 -in "$TESTBED_LEAF_CERT" -noout -pubkey | openssl pkey -pubin -outform DER | openssl dgst -sha256 -r | cut -d' ' -f1)
	[ "$spki" = "$TESTBED_LEAF_SPKI_SHA256" ] || { echo "leaf SPKI $spki != $TESTBED_LEAF_SPKI_SHA256"; return 1; }
	cadig=$(openssl x509 -in "$TESTBED_CA_CERT" -outform DER | openssl dgst -sha256 -r | cut -d' ' -f1)
	[ "$cadig" = "$TESTBED_CA_CERT_SHA256" ] || { echo "CA digest $cadig != $TESTBED_CA_CERT_SHA256"; return 1; }
	spki=$(openssl x509 -in "$TESTBED_SELFSIGNED_CERT" -noout -pubkey | openssl pkey -pubin -outform DER | openssl dgst -sha256 -r | cut -d' ' -f1)
	[ "$spki" = "$TESTBED_SELFSIGNED_SPKI_SHA256" ] || { echo "self-signed SPKI mismatch"; return 1; }
	out=$(openssl pkey -in "$TESTBED_LEAF_KEY" -pubout)
	[ "$out" = "$(openssl x509 -in "$TESTBED_LEAF_CERT" -noout -pubkey)" ] || { echo "leaf key does not match cert"; return 1; }
}
check "certificates: chain verifies, names, TLSA digests match" certs_ok

# rate limiting off: a burst of queries all answered
burst_ok() {
	local i out
	for i in $(seq 1 300); do
		out=$(drill -p "$P" @127.0.0.1 "$TESTBED_HOST_SECURE" A 2>&1) || { echo "$out"; return 1; }
		case $out in *"rcode: NOERROR"*) ;; *) echo "query $i: $out"; return 1 ;; esac
	done
}
check "no rate limiting: 300 queries answered" burst_ok

# a failing start must leave no process behind
failed_start_ok() {
	local out left
	DIR2=$(mktemp -d "${TMPDIR:-/tmp}/daneproxy-testbed2.XXXXXX")
	if out=$(TESTBED_PORT=$P TESTBED_TIMEOUT=5 "$TB" start "$DIR2" </dev/null 2>&1); then
		echo "second start on a taken port succeeded: $out"
		return 1
	fi
	left=$(procs_of "$DIR2/")
	[ -z "$left" ] || { echo "left behind: $left"; return 1; }
	[ ! -e "$DIR2/testbed.env" ] || { echo "testbed.env left behind"; return 1; }
	# the first bed is unaffected
	drill -p "$P" @127.0.0.1 "$TESTBED_HOST_SECURE" A | grep -q 'rcode: NOERROR' || { echo "first bed broken"; return 1; }
	rm -rf "$DIR2"
	DIR2=
}
check "failed start (port taken) cleans up" failed_start_ok

check "status reports running" "$TB" status "$DIR"
refuse_ok() {
	if "$TB" start "$DIR" </dev/null >/dev/null 2>&1; then
		echo "second start in a running DIR succeeded"
		return 1
	fi
	"$TB" status "$DIR" || { echo "the running bed was disturbed"; return 1; }
}
check "start refuses a running DIR" refuse_ok

# validating unbound (validation = resolver), when the bed runs one
if [ -n "${TESTBED_UNBOUND_PORT:-}" ]; then
	UP=$TESTBED_UNBOUND_PORT
	ub() { dig +dnssec +tries=1 +time=3 -p "$UP" @127.0.0.1 "$@" 2>&1 || true; }
	ub_case() { # name type rcode want-ad ede
		local out fl
		out=$(ub "$1" "$2")
		case $out in *"status: $3,"*) ;; *) echo "$out"; echo "(expected $3)"; return 1 ;; esac
		fl=$(sed -n 's/^;; flags: \([a-z ]*\);.*/\1/p' <<<"$out" | head -n 1)
		case " $fl " in
			*" ad "*) [ "$4" = ad ] || { echo "$out"; echo "(AD set, expected none)"; return 1; } ;;
			*) [ "$4" != ad ] || { echo "$out"; echo "(no AD)"; return 1; } ;;
		esac
		[ -z "${5:-}" ] || grep -q "EDE: $5" <<<"$out" || { echo "$out"; echo "(expected EDE $5)"; return 1; }
	}
	if command -v dig >/dev/null 2>&1; then
		check "unbound: secure TLSA has AD" ub_case "_443._tcp.$TESTBED_HOST_SECURE" TLSA NOERROR ad
		check "unbound: secure NXDOMAIN has AD" ub_case "$TESTBED_HOST_NXDOMAIN" A NXDOMAIN ad
		check "unbound: insecure A has no AD" ub_case "$TESTBED_HOST_INSECURE" A NOERROR no
		check "unbound: altered TLSA is SERVFAIL, EDE 6" ub_case "_443._tcp.$TESTBED_HOST_ALTERED" TLSA SERVFAIL no 6
		check "unbound: expired A is SERVFAIL with an EDE" ub_case "$TESTBED_HOST_EXPIRED" A SERVFAIL no
		check "unbound: big TLSA (TCP) has AD" ub_case "_443._tcp.$TESTBED_HOST_BIG" TLSA NOERROR ad
	fi
	unbound_hermetic() {
		grep -q "forward-addr: 127.0.0.1@$P\$" "$TESTBED_UNBOUND_CONF" || { echo "not forwarding to NSD"; return 1; }
		! grep -qi "root-hints" "$TESTBED_UNBOUND_CONF" || { echo "root hints configured"; return 1; }
		grep -q "trust-anchor-file: \"$TESTBED_DIR/root.ds\"" "$TESTBED_UNBOUND_CONF" || { echo "anchor"; return 1; }
		grep -q "interface: 127.0.0.1\$" "$TESTBED_UNBOUND_CONF" || { echo "not on loopback"; return 1; }
		grep -q "outgoing-interface: 127.0.0.1\$" "$TESTBED_UNBOUND_CONF" || { echo "outgoing not loopback"; return 1; }
	}
	check "unbound: hermetic (forwards to the bed's NSD only, bed anchor, no root hints)" unbound_hermetic
fi

# --------------------------------------------------------------------------
# stop
stop_ok() {
	local left
	"$TB" stop "$DIR" </dev/null || return 1
	left=$(procs_of "$DIR/")
	[ -z "$left" ] || { echo "left behind: $left"; return 1; }
	[ ! -e "$DIR/unbound.pgid" ] || { echo "unbound.pgid left behind"; return 1; }
	# UDP socket or TCP listener bound to 127.0.0.1:P (TIME_WAIT entries do not count)
	if awk -v a="0100007F:$(printf '%04X' "$P")" 'toupper($2)==a && (FILENAME ~ /udp/ || $4=="0A") {f=1} END{exit !f}' \
		/proc/net/udp /proc/net/tcp; then
		echo "port $P still open"
		return 1
	fi
	"$TB" stop "$DIR" || { echo "second stop failed"; return 1; }
	! "$TB" status "$DIR" || { echo "status says running"; return 1; }
}
check "stop: no NSD process of the bed remains, port closed, stop idempotent" stop_ok

printf '%d passed, %d failed\n' "$PASS" "$FAIL"
[ "$FAIL" -eq 0 ]
