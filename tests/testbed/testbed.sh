#!/usr/bin/env bash
# shellcheck disable=SC2015,SC2016  # "a && b || die" is intended; "$ORIGIN"/"$TTL" are zone-file text
# Hermetic DNSSEC test bed for daneproxy: one NSD on 127.0.0.1 serving a signed
# fake root "." (the only trust anchor), the signed zone dane.test and its
# delegated children (insecure, expired, bad DS, altered data, NSEC3), with
# certificates and TLSA records generated fresh on every start.
#
#   testbed.sh start DIR    create DIR, build keys/certs/zones, start NSD,
#                           write DIR/testbed.env (also printed on stdout)
#   testbed.sh stop DIR     stop the NSD process group of DIR (idempotent)
#   testbed.sh status DIR   exit 0 when the bed of DIR is running
#
# Environment (all optional):
#   TESTBED_PORT       DNS port to use (default: a free port in 20000-32767)
#   TESTBED_TLS_PORT   first extra TLS port with TLSA records (default: free)
#   TESTBED_TLS_PORT2  second extra TLS port with TLSA records (default: free)
#   TESTBED_SMTP_PORT  port of the mail cases' TLSA records, besides 25 (default: free)
#   TESTBED_TIMEOUT    seconds to wait for NSD to answer (default 10)
#   TESTBED_VERBOSE=1  progress messages on stderr
#   TESTBED_UNBOUND    auto (default): also start a validating unbound in front
#                      of NSD when unbound is installed; 1: require it; 0: never
#   TESTBED_UNBOUND_PORT  its port (default: a free port)
#
# Everything listens on 127.0.0.1 only. See README.md for the cases.

set -eu
set -o pipefail
umask 022
export LC_ALL=C

PROG=${0##*/}
T0=$(date +%s%3N)
ZONE=dane.test
NSD_PGID=
UNBOUND_PGID=
UNBOUND_PORT=
START_OK=
TESTBED_DIR=

die() {
	printf '%s: error: %s\n' "$PROG" "$*" >&2
	exit 1
}

info() {
	if [ "${TESTBED_VERBOSE:-0}" = 1 ]; then
		printf '%s: [%s ms] %s\n' "$PROG" "$(($(now_ms) - T0))" "$*" >&2
	fi
	return 0
}

usage() {
	printf 'usage: %s start|stop|status DIR\n' "$PROG" >&2
	exit 2
}

need() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || die "required command '$c' not found (install nsd, ldnsutils, openssl)"
	done
}

# Milliseconds since the epoch (GNU date).
now_ms() {
	date +%s%3N
}

# ---------------------------------------------------------------------------
# processes

# Print the pids of the live (non-zombie) processes whose process group is $1.
group_members() {
	local want=$1 f line rest state pgrp pid
	for f in /proc/[0-9]*/stat; do
		line=
		{ read -r line <"$f"; } 2>/dev/null || continue
		[ -n "$line" ] || continue
		pid=${line%% *}
		rest=${line##*) }          # "state ppid pgrp ..."
		state=${rest%% *}
		rest=${rest#* }            # "ppid pgrp ..."
		rest=${rest#* }            # "pgrp ..."
		pgrp=${rest%% *}
		if [ "$pgrp" = "$want" ] && [ "$state" != Z ] && [ "$state" != X ]; then
			printf '%s\n' "$pid"
		fi
	done
}

# True when process group $1 has a live member whose command is nsd.
group_is_nsd() {
	local p comm
	for p in $(group_members "$1"); do
		comm=
		{ read -r comm <"/proc/$p/comm"; } 2>/dev/null || continue
		case $comm in
			nsd | "nsd: "*) return 0 ;; # NSD renames its processes "nsd: main", "nsd: xfrd", ...
		esac
	done
	return 1
}

# Terminate process group $1 and wait until no live member remains.
kill_group() {
	local pg=$1 deadline sig=TERM
	case $pg in '' | *[!0-9]* | 0 | 1) return 0 ;; esac
	kill -TERM -- "-$pg" 2>/dev/null || true
	deadline=$(($(now_ms) + 5000))
	while [ -n "$(group_members "$pg")" ]; do
		if [ "$(now_ms)" -ge "$deadline" ]; then
			if [ "$sig" = KILL ]; then
				printf '%s: warning: process group %s did not exit\n' "$PROG" "$pg" >&2
				return 1
			fi
			sig=KILL
			kill -KILL -- "-$pg" 2>/dev/null || true
			deadline=$(($(now_ms) + 2000))
		fi
		sleep 0.01
	done
	return 0
}

# ---------------------------------------------------------------------------
# ports

# True when port $1 does not appear (local or remote) in /proc/net/{udp,tcp}*.
port_free() {
	local hex f
	hex=$(printf '%04X' "$1")
	for f in /proc/net/udp /proc/net/udp6 /proc/net/tcp /proc/net/tcp6; do
		[ -r "$f" ] || continue
		if grep -qi ":$hex " "$f"; then
			return 1
		fi
	done
	return 0
}

# Print a random free port in 20000-32767 (not 5353), avoiding the ports given.
pick_port() {
	local i p x bad
	for i in $(seq 1 200); do
		p=$((20000 + RANDOM % 12768))
		[ "$p" -ne 5353 ] || continue
		bad=
		for x in "$@"; do
			[ "$p" != "$x" ] || bad=1
		done
		[ -z "$bad" ] || continue
		if port_free "$p"; then
			printf '%s\n' "$p"
			return 0
		fi
	done
	die "no free port found in 20000-32767"
}

check_port() {
	case $1 in '' | *[!0-9]*) die "$2 must be a port number, got '$1'" ;; esac
	[ "$1" -ge 1 ] && [ "$1" -le 65535 ] || die "$2 out of range: $1"
}

# ---------------------------------------------------------------------------
# certificates

# Hex of the base64 body of a PEM block (i.e. the DER), piped through $1.
pem_der_digest() {
	# $1: sha256sum|sha512sum, stdin: PEM
	sed '/^-----/d' | base64 -d | "$1" | cut -d' ' -f1
}

der_hex() {
	sed '/^-----/d' | base64 -d | od -An -v -tx1 | tr -d ' \n'
}

make_pki() {
	local d=$1/pki san i
	mkdir -p "$d"
	san="DNS.1 = www.$ZONE
DNS.2 = *.$ZONE"
	i=3
	for c in insecure expired baddsl altered nsec3; do
		san="$san
DNS.$i = *.$c.$ZONE"
		i=$((i + 1))
	done
	cat >"$d/openssl.cnf" <<EOF
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[v3_leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = @leaf_san
[leaf_san]
$san
[v3_self]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
subjectAltName = DNS:selfsigned.$ZONE
EOF
	local common="-config $d/openssl.cnf -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -days 30"
	# shellcheck disable=SC2086
	openssl req -x509 $common -keyout "$d/ca.key" -out "$d/ca.pem" \
		-subj "/O=daneproxy testbed/CN=daneproxy testbed CA" -extensions v3_ca 2>"$d/openssl.log" ||
		die "openssl: CA generation failed: $(cat "$d/openssl.log")"
	# shellcheck disable=SC2086
	openssl req -x509 $common -keyout "$d/leaf.key" -out "$d/leaf.pem" \
		-subj "/CN=www.$ZONE" -extensions v3_leaf -CA "$d/ca.pem" -CAkey "$d/ca.key" 2>"$d/openssl.log" ||
		die "openssl: leaf generation failed: $(cat "$d/openssl.log")"
	# shellcheck disable=SC2086
	openssl req -x509 $common -keyout "$d/selfsigned.key" -out "$d/selfsigned.pem" \
		-subj "/CN=selfsigned.$ZONE" -extensions v3_self 2>"$d/openssl.log" ||
		die "openssl: self-signed generation failed: $(cat "$d/openssl.log")"
	cat "$d/leaf.pem" "$d/ca.pem" >"$d/chain.pem"
	openssl x509 -in "$d/leaf.pem" -noout -pubkey >"$d/leaf.spki.pem"
	openssl x509 -in "$d/selfsigned.pem" -noout -pubkey >"$d/selfsigned.spki.pem"

	LEAF_SPKI_SHA256=$(pem_der_digest sha256sum <"$d/leaf.spki.pem")
	LEAF_SPKI_SHA512=$(pem_der_digest sha512sum <"$d/leaf.spki.pem")
	LEAF_CERT_SHA256=$(pem_der_digest sha256sum <"$d/leaf.pem")
	CA_CERT_SHA256=$(pem_der_digest sha256sum <"$d/ca.pem")
	CA_CERT_HEX=$(der_hex <"$d/ca.pem")
	SELF_SPKI_SHA256=$(pem_der_digest sha256sum <"$d/selfsigned.spki.pem")
	[ ${#LEAF_SPKI_SHA256} -eq 64 ] && [ ${#CA_CERT_SHA256} -eq 64 ] &&
		[ ${#SELF_SPKI_SHA256} -eq 64 ] && [ ${#LEAF_SPKI_SHA512} -eq 128 ] ||
		die "could not compute certificate digests"
	rm -f "$d/openssl.log"
}

# ---------------------------------------------------------------------------
# zones

# Generate an ECDSA P-256 key with the SEP flag (used as a combined
# KSK/ZSK) for zone $1 in the current directory; prints its basename.
keygen() {
	ldns-keygen -r /dev/urandom -a ECDSAP256SHA256 -k "$1"
}

# TLSA lines "<owner> TLSA <rdata>" for every TLSA port: $1 host label
# (relative), rest: rdata strings.
tlsa() {
	local host=$1 p r
	shift
	for p in $TLSA_PORTS_SP; do
		for r in "$@"; do
			printf '_%s._tcp.%s\tTLSA\t%s\n' "$p" "$host" "$r"
		done
	done
}

# TLSA lines for the SMTP ports of the mail cases (25 and TESTBED_SMTP_PORT): $1 host label, rest: rdata.
tlsa_smtp() {
	local host=$1 p r
	shift
	for p in $SMTP_TLSA_PORTS_SP; do
		for r in "$@"; do
			printf '_%s._tcp.%s\tTLSA\t%s\n' "$p" "$host" "$r"
		done
	done
}

addr() {
	printf '%s\tA\t127.0.0.1\n%s\tAAAA\t::1\n' "$1" "$1"
}

# An IPv4 address only: MX hosts each have their own loopback address, so that every one can be a separate
# server on the same port (and none is reached through ::1 by accident).
addr4() {
	printf '%s\tA\t%s\n' "$1" "$2"
}

soa_ns() {
	printf '$TTL 300\n@\tSOA\tns.%s. hostmaster.%s. 1 3600 900 604800 300\n@\tNS\tns.%s.\n' \
		"$ZONE" "$ZONE" "$ZONE"
}

# Random hex of $1 bytes.
randhex() {
	od -An -v -N"$1" -tx1 /dev/urandom | tr -d ' \n'
}

sign() {
	# $1 origin, $2 in, $3 out, $4 key, rest: extra ldns-signzone options
	local origin=$1 in=$2 out=$3 key=$4
	shift 4
	ldns-signzone "$@" -o "$origin" -f "$out" "$in" "$key" 2>"$out.err" ||
		die "ldns-signzone $origin failed: $(cat "$out.err")"
	rm -f "$out.err"
}

# ---------------------------------------------------------------------------
# mail: MX RRsets of destination domains, MX hosts with their own loopback addresses and TLSA at the SMTP ports
# (README "Mail cases"). The tables below are the single source: mail_parent/mail_child write the zones from them
# and write_env writes the expectations.

# MX host cases: ID host address expect-addr expect-tlsa(at the SMTP port, the literal name).
MXHOST_TABLE='
MX1            mx1.dane.test               127.0.0.21 secure   secure
MX2            mx2.dane.test               127.0.0.22 secure   secure
MX_DEAD        mx-dead.dane.test           127.0.0.23 secure   secure
MX_MISMATCH    mx-mismatch.dane.test       127.0.0.24 secure   secure
MX_UNUSABLE    mx-unusable.dane.test       127.0.0.25 secure   secure
MX_NOTLSA      mx-notlsa.dane.test         127.0.0.26 secure   secure-nxdomain
MX_TA          mx.mail-ta.dane.test        127.0.0.27 secure   secure
MX_ALIAS       mx-alias.dane.test          127.0.0.21 secure   secure
MX_INSECURE    mx.insecure.dane.test       127.0.0.28 insecure insecure
MX_BOGUS_ADDR  mx.expired.dane.test        127.0.0.29 bogus    bogus
MX_BOGUS_TLSA  mx.altered.dane.test        127.0.0.30 secure   bogus
MX_SELFSIGNED  mx-selfsigned.dane.test     127.0.0.31 secure   secure
MX_NOMX        mail-nomx.dane.test         127.0.0.32 secure   secure
'

# Mail domain cases: ID domain expect-mx MX-list (pref:host,...; "-" none; "0:." the null MX).
MAIL_TABLE='
SECURE         mail-secure.dane.test           secure          10:mx1.dane.test
MULTI          mail-multi.dane.test            secure          10:mx-dead.dane.test,20:mx2.dane.test
EQUAL          mail-equal.dane.test            secure          10:mx1.dane.test,10:mx2.dane.test
NULLMX         mail-nullmx.dane.test           secure          0:.
NOMX           mail-nomx.dane.test             secure-nodata   -
NX             mail-nx.dane.test               secure-nxdomain -
CNAME_MX       mail-cnamemx.dane.test          secure          10:mx-alias.dane.test
MISMATCH       mail-mismatch.dane.test         secure          10:mx-mismatch.dane.test
MISMATCH_NEXT  mail-mismatchnext.dane.test     secure          10:mx-mismatch.dane.test,20:mx2.dane.test
UNUSABLE       mail-unusable.dane.test         secure          10:mx-unusable.dane.test
NOTLSA         mail-notlsa.dane.test           secure          10:mx-notlsa.dane.test
TA             mail-ta.dane.test               secure          10:mx.mail-ta.dane.test
SELFSIGNED     mail-selfsigned.dane.test       secure          10:mx-selfsigned.dane.test
INSECURE_HOST  mail-insecurehost.dane.test     secure          10:mx.insecure.dane.test
BOGUS_ADDR     mail-addrbogus.dane.test        secure          10:mx.expired.dane.test,20:mx2.dane.test
BOGUS_TLSA     mail-tlsabogus.dane.test        secure          10:mx.altered.dane.test,20:mx2.dane.test
ALIAS          mail-alias.dane.test            secure          10:mx1.dane.test
INSECURE       mail.insecure.dane.test         insecure        10:mx1.dane.test
ALIAS_INSECURE mail-aliasinsecure.dane.test    insecure        10:mx1.dane.test
BOGUS          mail.expired.dane.test          bogus           10:mx1.dane.test
'

# mx_rrset LABEL LIST - the MX records of one domain (relative owner LABEL) from a MAIL_TABLE list.
mx_rrset() {
	local label=$1 list=$2 e target
	[ "$list" != - ] || return 0
	for e in ${list//,/ }; do
		target=${e#*:}
		[ "$target" = . ] || target=$target.
		printf '%s\tMX\t%s\t%s\n' "$label" "${e%%:*}" "$target"
	done
}

# mail_parent - the mail cases that live in dane.test itself.
mail_parent() {
	local id d _x l
	# MX hosts
	addr4 mx1 127.0.0.21
	tlsa_smtp mx1 "3 1 1 $LEAF_SPKI_SHA256" "2 0 1 $CA_CERT_SHA256"
	addr4 mx2 127.0.0.22
	tlsa_smtp mx2 "3 1 1 $LEAF_SPKI_SHA256" "2 0 1 $CA_CERT_SHA256"
	addr4 mx-dead 127.0.0.23
	tlsa_smtp mx-dead "3 1 1 $LEAF_SPKI_SHA256" "2 0 1 $CA_CERT_SHA256"
	addr4 mx-mismatch 127.0.0.24
	tlsa_smtp mx-mismatch "3 1 1 $(randhex 32)" "2 0 1 $(randhex 32)"
	# only unusable for SMTP: PKIX usages (RFC 7672 section 3.1.3), a short digest
	addr4 mx-unusable 127.0.0.25
	tlsa_smtp mx-unusable "1 1 1 $LEAF_SPKI_SHA256" "0 0 1 $CA_CERT_SHA256" "3 1 1 ${LEAF_SPKI_SHA256:0:32}"
	addr4 mx-notlsa 127.0.0.26
	# DANE-TA only; the leaf's names (*.dane.test) cover the domain mail-ta.dane.test, not this two-label host
	addr4 mx.mail-ta 127.0.0.27
	tlsa_smtp mx.mail-ta "2 0 1 $CA_CERT_SHA256"
	# a CNAME'd MX host: its own TLSA matches nothing, the target's (mx1) does
	printf 'mx-alias\tCNAME\tmx1.%s.\n' "$ZONE"
	tlsa_smtp mx-alias "3 1 1 $(randhex 32)"
	# DANE-EE for the self-signed certificate, whose only name is selfsigned.dane.test
	addr4 mx-selfsigned 127.0.0.31
	tlsa_smtp mx-selfsigned "3 1 1 $SELF_SPKI_SHA256"
	# a domain without MX: itself, with its own TLSA
	addr4 mail-nomx 127.0.0.32
	tlsa_smtp mail-nomx "3 1 1 $LEAF_SPKI_SHA256" "2 0 1 $CA_CERT_SHA256"
	# domains
	# every domain one label below dane.test, except the two CNAMEs (whose list is what the alias leads to)
	while read -r id d _x l; do
		[ -n "$id" ] || continue
		case $id in ALIAS | ALIAS_INSECURE) continue ;; esac
		case ${d%".$ZONE"} in "$d" | *.*) continue ;; esac
		mx_rrset "${d%".$ZONE"}" "$l"
	done <<<"$MAIL_TABLE"
	printf 'mail-alias\tCNAME\tmail-secure.%s.\n' "$ZONE"
	printf 'mail-aliasinsecure\tCNAME\tmail.insecure.%s.\n' "$ZONE"
}

# mail_child ZONE-LABEL - the mail cases inside a delegated child (insecure, expired, altered).
mail_child() {
	case $1 in
		insecure)
			addr4 mx 127.0.0.28
			tlsa_smtp mx "3 1 1 $LEAF_SPKI_SHA256" "2 0 1 $CA_CERT_SHA256"
			mx_rrset mail 10:mx1.$ZONE
			;;
		expired)
			addr4 mx 127.0.0.29
			tlsa_smtp mx "3 1 1 $LEAF_SPKI_SHA256" "2 0 1 $CA_CERT_SHA256"
			mx_rrset mail 10:mx1.$ZONE
			;;
		altered)
			# the TLSA data is edited after signing, like www's: the addresses validate, the TLSA is bogus
			addr4 mx 127.0.0.30
			tlsa_smtp mx "3 1 1 $ALTERED_PLACEHOLDER" "2 0 1 $CA_CERT_SHA256"
			;;
	esac
}

make_zones() {
	local dir=$1 z=$1/zones k=$1/keys
	local kroot kzone kexp kbad kspare kalt kn3 i n c f p big
	mkdir -p "$z" "$k"
	mkdir -p "$k/spare"
	(
		cd "$k"
		for n in . "$ZONE" "expired.$ZONE" "baddsl.$ZONE"; do
			keygen "$n"
		done
		# A second key for baddsl.dane.test that the child never uses: its DS
		# goes into the parent (own directory: the key tags may collide).
		printf 'spare/'
		(cd spare && keygen "baddsl.$ZONE")
		for n in "altered.$ZONE" "nsec3.$ZONE"; do
			keygen "$n"
		done
	) >"$k/names" 2>"$k/keygen.err" || die "ldns-keygen failed: $(cat "$k/keygen.err")"
	rm -f "$k/keygen.err"
	{
		read -r kroot
		read -r kzone
		read -r kexp
		read -r kbad
		read -r kspare
		read -r kalt
		read -r kn3
	} <"$k/names"
	[ -n "$kn3" ] || die "ldns-keygen printed no key names"

	# The standard TLSA RRset is "3 1 1 <leaf SPKI SHA-256>" + "2 0 1 <CA cert SHA-256>".

	# Child zones -----------------------------------------------------------
	for c in insecure expired baddsl altered nsec3; do
		{
			printf '$ORIGIN %s.%s.\n' "$c" "$ZONE"
			soa_ns
			addr www
			if [ "$c" = altered ]; then
				# Signed with a placeholder; the real digest is put in after signing.
				tlsa www "3 1 1 $ALTERED_PLACEHOLDER" "2 0 1 $CA_CERT_SHA256"
			else
				tlsa www "3 1 1 $LEAF_SPKI_SHA256" "2 0 1 $CA_CERT_SHA256"
			fi
			mail_child "$c"
		} >"$z/$c.zone"
	done
	cp "$z/insecure.zone" "$z/insecure.signed" # served unsigned
	sign "expired.$ZONE." "$z/expired.zone" "$z/expired.signed" "$k/$kexp" -i 20200101 -e 20200201
	sign "baddsl.$ZONE." "$z/baddsl.zone" "$z/baddsl.signed" "$k/$kbad" -i "$SIG_INCEPTION" -e "$SIG_EXPIRATION"
	sign "altered.$ZONE." "$z/altered.zone" "$z/altered.signed" "$k/$kalt" -i "$SIG_INCEPTION" -e "$SIG_EXPIRATION"
	sign "nsec3.$ZONE." "$z/nsec3.zone" "$z/nsec3.signed" "$k/$kn3" -i "$SIG_INCEPTION" -e "$SIG_EXPIRATION" \
		-n -a 1 -t 0
	# Edit the signed TLSA data: the RRSIG no longer matches -> bogus.
	sed -i "s/$ALTERED_PLACEHOLDER/$LEAF_SPKI_SHA256/I" "$z/altered.signed"
	grep -qi "$LEAF_SPKI_SHA256" "$z/altered.signed" && ! grep -qi "$ALTERED_PLACEHOLDER" "$z/altered.signed" ||
		die "could not alter the TLSA data of altered.$ZONE"

	# dane.test -------------------------------------------------------------
	big=()
	n=$(randhex $((39 * 32)))
	for ((i = 0; i < 39; i++)); do
		big+=("3 1 1 ${n:$((i * 64)):64}")
	done
	big+=("3 1 1 $LEAF_SPKI_SHA256")
	{
		printf '$ORIGIN %s.\n' "$ZONE"
		soa_ns
		printf 'ns\tA\t127.0.0.1\n'
		# secure
		addr www
		tlsa www "3 1 1 $LEAF_SPKI_SHA256" "2 0 1 $CA_CERT_SHA256"
		# secure NODATA for TLSA: the TLSA owner exists with TXT only
		addr notlsa
		for p in $TLSA_PORTS_SP; do
			printf '_%s._tcp.notlsa\tTXT\t"no TLSA here"\n' "$p"
		done
		# secure, no TLSA owner name at all (TLSA query -> secure NXDOMAIN)
		addr nolabel
		# CNAME chains
		# cname-secure: the TLSA at the original name matches nothing, the one at
		# the expanded name (www) matches: only CNAME expansion authenticates.
		printf 'cname-secure\tCNAME\twww.%s.\n' "$ZONE"
		tlsa cname-secure "3 1 1 $(randhex 32)"
		printf 'cname-insecure\tCNAME\twww.insecure.%s.\n' "$ZONE"
		# truncation: 40 TLSA records per port, one of them matches the leaf
		addr big
		tlsa big "${big[@]}"
		# only unusable TLSA records
		addr unusable
		tlsa unusable \
			"4 1 1 $LEAF_SPKI_SHA256" \
			"3 2 1 $LEAF_SPKI_SHA256" \
			"3 1 1 ${LEAF_SPKI_SHA256:0:32}" \
			"3 1 2 $LEAF_SPKI_SHA256" \
			"3 1 7 $LEAF_SPKI_SHA256" \
			"3 1 0 00112233" \
			"2 0 0 3082"
		# usage variants
		addr ee
		tlsa ee "3 1 1 $LEAF_SPKI_SHA256"
		addr ta
		tlsa ta "2 0 1 $CA_CERT_SHA256"
		addr tafull
		tlsa tafull "2 0 0 $CA_CERT_HEX"
		addr mismatch
		tlsa mismatch "3 1 1 $(randhex 32)" "2 0 1 $(randhex 32)"
		addr selfsigned
		tlsa selfsigned "3 1 1 $SELF_SPKI_SHA256"
		addr pkix-ee
		tlsa pkix-ee "1 1 1 $LEAF_SPKI_SHA256"
		addr pkix-ta
		tlsa pkix-ta "0 0 1 $CA_CERT_SHA256"
		addr sha512
		tlsa sha512 "3 1 2 $LEAF_SPKI_SHA512"
		addr agility
		tlsa agility "3 1 1 $LEAF_SPKI_SHA256" "3 1 2 $(randhex 64)"
		mail_parent
		# TLSA at a name with no addresses (a parent domain's record, the `check` probe)
		tlsa noaddr "3 1 1 $LEAF_SPKI_SHA256"
		addr www.noaddr
		printf '$TTL 2\n'
		addr shortttl
		tlsa shortttl "3 1 1 $LEAF_SPKI_SHA256" "2 0 1 $CA_CERT_SHA256"
		printf '$TTL 300\n'
		# delegations
		for c in insecure expired baddsl altered nsec3; do
			printf '%s\tNS\tns.%s.\n' "$c" "$ZONE"
		done
		# DS records (none for insecure; baddsl gets the DS of a key it does not use)
		for f in "$kexp" "$kspare" "$kalt" "$kn3"; do
			sed 's/^\([^[:space:]]*\)[[:space:]].*[[:space:]]DS[[:space:]]/\1 DS /' "$k/$f.ds"
		done
	} >"$z/$ZONE.zone"
	sign "$ZONE." "$z/$ZONE.zone" "$z/$ZONE.signed" "$k/$kzone" -i "$SIG_INCEPTION" -e "$SIG_EXPIRATION"

	# root ------------------------------------------------------------------
	{
		printf '$ORIGIN .\n'
		soa_ns
		printf '%s.\tNS\tns.%s.\n' "$ZONE" "$ZONE"
		printf 'ns.%s.\tA\t127.0.0.1\n' "$ZONE"
		sed 's/^\([^[:space:]]*\)[[:space:]].*[[:space:]]DS[[:space:]]/\1 DS /' "$k/$kzone.ds"
	} >"$z/root.zone"
	sign "." "$z/root.zone" "$z/root.signed" "$k/$kroot" -i "$SIG_INCEPTION" -e "$SIG_EXPIRATION"

	# trust anchor: root DS (and DNSKEY) in presentation format
	sed 's/^\([^[:space:]]*\)[[:space:]].*[[:space:]]DS[[:space:]]/\1 300 IN DS /' "$k/$kroot.ds" >"$dir/root.ds"
	sed -e 's/;.*$//' -e 's/[[:space:]]*$//' -e 's/^\([^[:space:]]*\)[[:space:]].*[[:space:]]DNSKEY[[:space:]]/\1 300 IN DNSKEY /' \
		"$k/$kroot.key" >"$dir/root.key"
	grep -q '^\. 300 IN DS [0-9]* 13 2 [0-9a-f]*$' "$dir/root.ds" || die "unexpected root DS: $(cat "$dir/root.ds")"
}

write_nsd_conf() {
	local dir=$1 port=$2
	{
		cat <<EOF
# generated by $PROG
server:
	ip-address: 127.0.0.1
	port: $port
	do-ip4: yes
	do-ip6: no
	username: ""
	chroot: ""
	database: ""
	zonesdir: "$dir/zones"
	pidfile: "$dir/nsd.pid"
	logfile: "$dir/nsd.log"
	zonelistfile: "$dir/zone.list"
	xfrdfile: "$dir/xfrd.state"
	xfrdir: "$dir"
	server-count: 1
	tcp-count: 128
	reuseport: no
	verbosity: 1
	hide-version: no
	hide-identity: no
	identity: "$IDENTITY"
	ipv4-edns-size: 1232
	zonefiles-check: yes
	zonefiles-write: 0
	rrl-ratelimit: 0
	rrl-whitelist-ratelimit: 0
remote-control:
	control-enable: no
EOF
		local n f
		for n in . "$ZONE" "insecure.$ZONE" "expired.$ZONE" "baddsl.$ZONE" "altered.$ZONE" "nsec3.$ZONE"; do
			case $n in
				.) f=root.signed ;;
				"$ZONE") f=$ZONE.signed ;;
				*) f=${n%%.*}.signed ;;
			esac
			printf 'zone:\n\tname: "%s"\n\tzonefile: "%s/zones/%s"\n' "$n" "$dir" "$f"
		done
	} >"$dir/nsd.conf"
}

# Start NSD on $2 and wait until it answers with our identity. Returns 1 when
# NSD exited early (e.g. port taken), dies on other errors.
launch_nsd() {
	local dir=$1 port=$2 pid deadline hex out comm pg stat rest
	write_nsd_conf "$dir" "$port"
	rm -f "$dir/nsd.pid" "$dir/nsd.log"
	setsid nsd -d -c "$dir/nsd.conf" </dev/null >"$dir/nsd.out" 2>&1 &
	pid=$!
	NSD_PGID=$pid
	printf '%s\n' "$pid" >"$dir/nsd.pgid"
	hex=$(printf '%04X' "$port")
	deadline=$(($(now_ms) + ${TESTBED_TIMEOUT:-10} * 1000))
	while :; do
		if [ -z "$(group_members "$pid")" ]; then
			wait "$pid" 2>/dev/null || true
			kill_group "$pid" || true
			NSD_PGID=
			rm -f "$dir/nsd.pgid"
			return 1
		fi
		if grep -qi "^ *[0-9]*: 0100007F:$hex " /proc/net/udp 2>/dev/null; then
			out=$(timeout 3 drill -p "$port" @127.0.0.1 id.server CH TXT 2>/dev/null || true)
			case $out in
				*"$IDENTITY"*) break ;;
			esac
		fi
		[ "$(now_ms)" -lt "$deadline" ] || die "NSD did not answer on 127.0.0.1@$port within ${TESTBED_TIMEOUT:-10}s; log: $(tail -n 20 "$dir/nsd.log" "$dir/nsd.out" 2>/dev/null)"
		sleep 0.01
	done
	# NSD must be the leader of its own process group (setsid did not fork).
	comm=
	{ read -r comm <"/proc/$pid/comm"; } 2>/dev/null || true
	{ read -r stat <"/proc/$pid/stat"; } 2>/dev/null || stat=
	rest=${stat##*) }
	rest=${rest#* }
	rest=${rest#* }
	pg=${rest%% *}
	case $comm in nsd | "nsd: "*) ;; *) pg= ;; esac
	[ "$pg" = "$pid" ] || die "NSD is not the leader of its process group (pid $pid, comm '$comm', pgrp '$pg')"
	return 0
}

# ---------------------------------------------------------------------------
# unbound: an optional validating resolver in front of NSD (validation = resolver)

# True when process group $1 has a live member whose command is unbound.
group_is_unbound() {
	local p comm
	for p in $(group_members "$1"); do
		comm=
		{ read -r comm <"/proc/$p/comm"; } 2>/dev/null || continue
		[ "$comm" != unbound ] || return 0
	done
	return 1
}

# Hermetic: no root hints are used (every name is forwarded to the bed's NSD,
# which serves the root and every zone below it), the bed's root DS is the only
# trust anchor, nothing is read or written outside DIR.
write_unbound_conf() {
	local dir=$1 port=$2
	cat >"$dir/unbound.conf" <<EOF
# generated by $PROG
server:
	interface: 127.0.0.1
	port: $port
	do-ip4: yes
	do-ip6: no
	do-udp: yes
	do-tcp: yes
	interface-automatic: no
	so-reuseport: no
	num-threads: 1
	outgoing-range: 64
	outgoing-interface: 127.0.0.1
	access-control: 127.0.0.0/8 allow
	username: ""
	chroot: ""
	directory: "$dir"
	pidfile: "$dir/unbound.pid"
	logfile: "$dir/unbound.log"
	use-syslog: no
	do-daemonize: no
	verbosity: 1
	val-log-level: 2
	log-servfail: yes
	ede: yes
	trust-anchor-file: "$dir/root.ds"
	trust-anchor-signaling: no
	root-key-sentinel: no
	do-not-query-localhost: no
	qname-minimisation: no
	prefetch: no
	serve-expired: no
	cache-min-ttl: 0
	minimal-responses: no
	local-zone: "test." nodefault
remote-control:
	control-enable: no
forward-zone:
	name: "."
	forward-addr: 127.0.0.1@$NSD_DNS_PORT
	forward-first: no
EOF
}

# Start unbound on $2 in front of NSD and wait until it answers a validated
# (AD) query. Returns 1 when unbound exited early (e.g. port taken).
launch_unbound() {
	local dir=$1 port=$2 pid deadline hex out
	write_unbound_conf "$dir" "$port"
	out=$(unbound-checkconf "$dir/unbound.conf" 2>&1) || die "unbound-checkconf: $out"
	rm -f "$dir/unbound.pid" "$dir/unbound.log"
	setsid unbound -d -c "$dir/unbound.conf" </dev/null >"$dir/unbound.out" 2>&1 &
	pid=$!
	UNBOUND_PGID=$pid
	printf '%s\n' "$pid" >"$dir/unbound.pgid"
	hex=$(printf '%04X' "$port")
	deadline=$(($(now_ms) + ${TESTBED_TIMEOUT:-10} * 1000))
	while :; do
		if [ -z "$(group_members "$pid")" ]; then
			wait "$pid" 2>/dev/null || true
			UNBOUND_PGID=
			rm -f "$dir/unbound.pgid"
			return 1
		fi
		if grep -qi "^ *[0-9]*: 0100007F:$hex " /proc/net/udp 2>/dev/null; then
			# bounded: a probe that never returns must not hold the start past its deadline
			out=$(timeout 3 drill -D -p "$port" @127.0.0.1 "www.$ZONE" A 2>/dev/null || true)
			case $out in
				*"rcode: NOERROR"*"flags: "*" ad "*) break ;;
			esac
		fi
		[ "$(now_ms)" -lt "$deadline" ] || die "unbound did not validate www.$ZONE on 127.0.0.1@$port within ${TESTBED_TIMEOUT:-10}s; log: $(tail -n 20 "$dir/unbound.log" "$dir/unbound.out" 2>/dev/null)"
		sleep 0.01
	done
	return 0
}

# start_unbound DIR - per TESTBED_UNBOUND; sets UNBOUND_PORT when one runs.
start_unbound() {
	local dir=$1 want=${TESTBED_UNBOUND:-auto} attempt=0 port
	case $want in
		0 | no) return 0 ;;
		auto) command -v unbound >/dev/null 2>&1 && command -v unbound-checkconf >/dev/null 2>&1 || return 0 ;;
		1 | yes) need unbound unbound-checkconf ;;
		*) die "TESTBED_UNBOUND must be auto, 1 or 0, got '$want'" ;;
	esac
	if [ -n "${TESTBED_UNBOUND_PORT:-}" ]; then
		check_port "$TESTBED_UNBOUND_PORT" TESTBED_UNBOUND_PORT
	fi
	info "starting unbound"
	while :; do
		attempt=$((attempt + 1))
		port=${TESTBED_UNBOUND_PORT:-$(pick_port "$NSD_DNS_PORT" "$TLS_PORT" "$TLS_PORT2" "$SMTP_PORT")}
		if launch_unbound "$dir" "$port"; then
			break
		fi
		if [ -n "${TESTBED_UNBOUND_PORT:-}" ] || [ "$attempt" -ge 5 ]; then
			die "unbound exited during startup on port $port: $(tail -n 20 "$dir/unbound.log" "$dir/unbound.out" 2>/dev/null)"
		fi
	done
	UNBOUND_PORT=$port
	info "unbound validating on 127.0.0.1@$port"
}

write_env() {
	local dir=$1 tmp=$1/testbed.env.tmp
	{
		cat <<EOF
TESTBED_DIR=$dir
TESTBED_DNS_ADDR=127.0.0.1
TESTBED_DNS_PORT=$DNS_PORT
TESTBED_RESOLVER=127.0.0.1@$DNS_PORT
TESTBED_TRUST_ANCHOR=$dir/root.ds
TESTBED_TRUST_ANCHOR_DNSKEY=$dir/root.key
TESTBED_ZONE=$ZONE
TESTBED_NSD_PID=$NSD_PGID
TESTBED_NSD_PGID=$NSD_PGID
TESTBED_NSD_CONF=$dir/nsd.conf
TESTBED_NSD_LOG=$dir/nsd.log
TESTBED_ADDR4=127.0.0.1
TESTBED_ADDR6=::1
TESTBED_TLS_PORT=$TLS_PORT
TESTBED_TLS_PORT2=$TLS_PORT2
TESTBED_TLSA_PORTS=$TLSA_PORTS
TESTBED_CA_CERT=$dir/pki/ca.pem
TESTBED_CA_KEY=$dir/pki/ca.key
TESTBED_LEAF_CERT=$dir/pki/leaf.pem
TESTBED_LEAF_KEY=$dir/pki/leaf.key
TESTBED_CHAIN=$dir/pki/chain.pem
TESTBED_SELFSIGNED_CERT=$dir/pki/selfsigned.pem
TESTBED_SELFSIGNED_KEY=$dir/pki/selfsigned.key
TESTBED_LEAF_SPKI_SHA256=$LEAF_SPKI_SHA256
TESTBED_LEAF_SPKI_SHA512=$LEAF_SPKI_SHA512
TESTBED_LEAF_CERT_SHA256=$LEAF_CERT_SHA256
TESTBED_CA_CERT_SHA256=$CA_CERT_SHA256
TESTBED_SELFSIGNED_SPKI_SHA256=$SELF_SPKI_SHA256
EOF
		if [ -n "$UNBOUND_PORT" ]; then
			printf 'TESTBED_UNBOUND_RESOLVER=127.0.0.1@%s\nTESTBED_UNBOUND_PORT=%s\nTESTBED_UNBOUND_PGID=%s\nTESTBED_UNBOUND_CONF=%s\nTESTBED_UNBOUND_LOG=%s\n' \
				"$UNBOUND_PORT" "$UNBOUND_PORT" "$UNBOUND_PGID" "$dir/unbound.conf" "$dir/unbound.log"
		fi
		# case table: NAME host address-outcome tlsa-outcome
		local names='' n h a t
		while read -r n h a t; do
			[ -n "$n" ] || continue
			names=${names:+$names,}$n
			printf 'TESTBED_HOST_%s=%s\nTESTBED_EXPECT_ADDR_%s=%s\nTESTBED_EXPECT_TLSA_%s=%s\n' \
				"$n" "$h" "$n" "$a" "$n" "$t"
		done <<EOF
SECURE         www.$ZONE                secure          secure
NXDOMAIN       nx.$ZONE                 secure-nxdomain secure-nxdomain
NODATA         notlsa.$ZONE             secure          secure-nodata
NOLABEL        nolabel.$ZONE            secure          secure-nxdomain
INSECURE       www.insecure.$ZONE       insecure        insecure
EXPIRED        www.expired.$ZONE        bogus           bogus
BADDS          www.baddsl.$ZONE         bogus           bogus
ALTERED        www.altered.$ZONE        secure          bogus
CNAME_SECURE   cname-secure.$ZONE       secure          secure
CNAME_INSECURE cname-insecure.$ZONE     insecure        secure-nxdomain
BIG            big.$ZONE                secure          secure
UNUSABLE       unusable.$ZONE           secure          secure
EE             ee.$ZONE                 secure          secure
TA             ta.$ZONE                 secure          secure
TAFULL         tafull.$ZONE             secure          secure
MISMATCH       mismatch.$ZONE           secure          secure
SELFSIGNED     selfsigned.$ZONE         secure          secure
PKIX_EE        pkix-ee.$ZONE            secure          secure
PKIX_TA        pkix-ta.$ZONE            secure          secure
SHA512         sha512.$ZONE             secure          secure
AGILITY        agility.$ZONE            secure          secure
SHORTTTL       shortttl.$ZONE           secure          secure
NSEC3          www.nsec3.$ZONE          secure          secure
NSEC3_NX       nx.nsec3.$ZONE           secure-nxdomain secure-nxdomain
EOF
		printf 'TESTBED_TARGET_CNAME_SECURE=www.%s\nTESTBED_TARGET_CNAME_INSECURE=www.insecure.%s\n' "$ZONE" "$ZONE"
		# not a case: a signed TLSA RRset at a name without A/AAAA, and a host below it without TLSA
		printf 'TESTBED_TLSA_NOADDR=noaddr.%s\nTESTBED_HOST_BELOW_NOADDR=www.noaddr.%s\n' "$ZONE" "$ZONE"
		printf 'TESTBED_CASES=%s\n' "$names"
		# mail cases (README "Mail cases")
		printf 'TESTBED_SMTP_PORT=%s\nTESTBED_SMTP_TLSA_PORTS=%s\n' "$SMTP_PORT" "$(printf '%s' "$SMTP_TLSA_PORTS_SP" | tr ' ' ',' | sed 's/,$//')"
		local mx_names='' mail_names='' ip
		while read -r n h ip a t; do
			[ -n "$n" ] || continue
			mx_names=${mx_names:+$mx_names,}$n
			printf 'TESTBED_MXHOST_%s=%s\nTESTBED_MXHOST_ADDR_%s=%s\nTESTBED_EXPECT_MXHOST_ADDR_%s=%s\nTESTBED_EXPECT_MXHOST_TLSA_%s=%s\n' \
				"$n" "$h" "$n" "$ip" "$n" "$a" "$n" "$t"
		done <<<"$MXHOST_TABLE"
		printf 'TESTBED_MXHOST_CASES=%s\n' "$mx_names"
		while read -r n h a t; do
			[ -n "$n" ] || continue
			mail_names=${mail_names:+$mail_names,}$n
			[ "$t" != - ] || t=
			printf 'TESTBED_MAIL_DOMAIN_%s=%s\nTESTBED_EXPECT_MX_%s=%s\nTESTBED_MX_%s=%s\n' "$n" "$h" "$n" "$a" "$n" "$t"
		done <<<"$MAIL_TABLE"
		printf 'TESTBED_MAIL_CASES=%s\n' "$mail_names"
	} >"$tmp"
	mv -f "$tmp" "$dir/testbed.env"
}

on_exit_start() {
	local rc=$?
	if [ -z "$START_OK" ]; then
		if [ -n "$UNBOUND_PGID" ]; then
			kill_group "$UNBOUND_PGID" || true
		fi
		if [ -n "$NSD_PGID" ]; then
			kill_group "$NSD_PGID" || true
		fi
		if [ -n "$TESTBED_DIR" ]; then
			rm -f "$TESTBED_DIR/testbed.env" "$TESTBED_DIR/testbed.env.tmp" "$TESTBED_DIR/nsd.pgid" \
				"$TESTBED_DIR/unbound.pgid"
		fi
		[ "$rc" -ne 0 ] || rc=1
		printf '%s: start failed\n' "$PROG" >&2
	fi
	exit "$rc"
}

cmd_start() {
	local dir=$1 port attempt
	need nsd drill ldns-keygen ldns-signzone openssl setsid base64 sha256sum sha512sum od
	case $dir in
		*[!A-Za-z0-9._/+@%:-]*) die "DIR may contain only [A-Za-z0-9._/+@%:-] (it goes into an unquoted env file): '$dir'" ;;
	esac
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd -P)
	case $dir in
		*[!A-Za-z0-9._/+@%:-]*) die "resolved DIR contains unsupported characters: '$dir'" ;;
	esac
	if [ -r "$dir/nsd.pgid" ]; then
		local old
		old=$(cat "$dir/nsd.pgid")
		if [ -n "$old" ] && group_is_nsd "$old"; then
			die "a test bed is already running in $dir (pgid $old); run '$PROG stop $dir' first"
		fi
	fi
	TESTBED_DIR=$dir
	trap on_exit_start EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM HUP
	rm -rf "$dir/keys" "$dir/pki" "$dir/zones"
	if [ -r "$dir/unbound.pgid" ]; then
		local old_ub
		old_ub=$(cat "$dir/unbound.pgid")
		if [ -n "$old_ub" ] && group_is_unbound "$old_ub"; then
			die "an unbound of a test bed is still running in $dir (pgid $old_ub); run '$PROG stop $dir' first"
		fi
	fi
	rm -f "$dir/testbed.env" "$dir/nsd.pgid" "$dir/unbound.pgid" "$dir/root.ds" "$dir/root.key"

	# ports
	if [ -n "${TESTBED_PORT:-}" ]; then
		check_port "$TESTBED_PORT" TESTBED_PORT
		[ "$TESTBED_PORT" -ne 5353 ] || die "TESTBED_PORT must not be 5353"
	fi
	if [ -n "${TESTBED_TLS_PORT:-}" ]; then
		check_port "$TESTBED_TLS_PORT" TESTBED_TLS_PORT
		TLS_PORT=$TESTBED_TLS_PORT
	else
		TLS_PORT=$(pick_port "${TESTBED_PORT:-}")
	fi
	if [ -n "${TESTBED_TLS_PORT2:-}" ]; then
		check_port "$TESTBED_TLS_PORT2" TESTBED_TLS_PORT2
		TLS_PORT2=$TESTBED_TLS_PORT2
	else
		TLS_PORT2=$(pick_port "${TESTBED_PORT:-}" "$TLS_PORT")
	fi
	if [ -n "${TESTBED_SMTP_PORT:-}" ]; then
		check_port "$TESTBED_SMTP_PORT" TESTBED_SMTP_PORT
		SMTP_PORT=$TESTBED_SMTP_PORT
	else
		SMTP_PORT=$(pick_port "${TESTBED_PORT:-}" "$TLS_PORT" "$TLS_PORT2")
	fi
	SMTP_TLSA_PORTS_SP=$(printf '%s\n' 25 "$SMTP_PORT" | awk '!seen[$0]++' | tr '\n' ' ')
	TLSA_PORTS="443,$TLS_PORT,$TLS_PORT2"
	TLSA_PORTS_SP=$(printf '%s\n' "443 $TLS_PORT $TLS_PORT2" | tr ' ' '\n' | awk '!seen[$0]++' | tr '\n' ' ')

	local now
	now=$(date +%s)
	SIG_INCEPTION=$((now - 86400))
	SIG_EXPIRATION=$((now + 30 * 86400))
	ALTERED_PLACEHOLDER=a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1
	IDENTITY="daneproxy-testbed-$$-$(randhex 8)"

	info "generating certificates"
	make_pki "$dir"
	info "generating keys and signing zones"
	make_zones "$dir"
	info "zones signed"

	info "starting nsd"
	attempt=0
	while :; do
		attempt=$((attempt + 1))
		if [ -n "${TESTBED_PORT:-}" ]; then
			port=$TESTBED_PORT
		else
			port=$(pick_port "$TLS_PORT" "$TLS_PORT2" "$SMTP_PORT")
		fi
		if launch_nsd "$dir" "$port"; then
			break
		fi
		if [ -n "${TESTBED_PORT:-}" ] || [ "$attempt" -ge 5 ]; then
			die "nsd exited during startup on port $port: $(tail -n 20 "$dir/nsd.log" "$dir/nsd.out" 2>/dev/null)"
		fi
		info "nsd failed on port $port, retrying with another port"
	done
	DNS_PORT=$port
	NSD_DNS_PORT=$port
	start_unbound "$dir"
	write_env "$dir"
	START_OK=1
	trap - EXIT INT TERM HUP
	info "started: $dir/testbed.env"
	cat "$dir/testbed.env"
}

cmd_stop() {
	local dir=$1 pg= upg=
	[ -d "$dir" ] || return 0
	# unbound first: it forwards to NSD
	if [ -r "$dir/unbound.pgid" ]; then
		upg=$(cat "$dir/unbound.pgid")
	elif [ -r "$dir/testbed.env" ]; then
		upg=$(sed -n 's/^TESTBED_UNBOUND_PGID=//p' "$dir/testbed.env")
	fi
	case $upg in
		'' | *[!0-9]*) ;;
		*)
			if group_is_unbound "$upg"; then
				kill_group "$upg" || die "could not stop unbound process group $upg"
			fi
			;;
	esac
	rm -f "$dir/unbound.pgid"
	if [ -r "$dir/nsd.pgid" ]; then
		pg=$(cat "$dir/nsd.pgid")
	elif [ -r "$dir/testbed.env" ]; then
		pg=$(sed -n 's/^TESTBED_NSD_PGID=//p' "$dir/testbed.env")
	fi
	case $pg in '' | *[!0-9]*) return 0 ;; esac
	if group_is_nsd "$pg"; then
		kill_group "$pg" || die "could not stop nsd process group $pg"
	fi
	rm -f "$dir/nsd.pgid"
	return 0
}

cmd_status() {
	local dir=$1 pg=
	[ -r "$dir/nsd.pgid" ] || return 1
	pg=$(cat "$dir/nsd.pgid")
	case $pg in '' | *[!0-9]*) return 1 ;; esac
	group_is_nsd "$pg" || return 1
	# a bed started with unbound is running only while its unbound is
	if [ -r "$dir/unbound.pgid" ]; then
		pg=$(cat "$dir/unbound.pgid")
		case $pg in '' | *[!0-9]*) return 1 ;; esac
		group_is_unbound "$pg" || return 1
	fi
	return 0
}

[ $# -eq 2 ] || usage
[ -n "$2" ] || usage
case $1 in
	start) cmd_start "$2" ;;
	stop) cmd_stop "$2" ;;
	status) cmd_status "$2" ;;
	*) usage ;;
esac
