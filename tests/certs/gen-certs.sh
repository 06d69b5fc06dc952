#!/bin/sh
# gen-certs.sh - generate every certificate the DANE tests need into OUTDIR, with the openssl CLI only.
#
# Usage: gen-certs.sh OUTDIR
#
# For each certificate NAME it writes NAME.pem, NAME.der (certificate DER), NAME.spki.der (SubjectPublicKeyInfo
# DER, from the certificate via `openssl x509 -pubkey | openssl pkey -pubin`) and NAME.key. Validity windows are
# fixed (not relative to the wall clock) so that tests can verify at a fixed time, 2030-01-01:
#   valid          2020-01-01 .. 2040-01-01
#   expired        2020-01-01 .. 2020-02-01 (leaf), 2020-01-01 .. 2021-01-01 (CAs)
#   not yet valid  2035-01-01 .. 2040-01-01
# It also writes the chain files (chain-*.pem) listed at the end. Keys are ECDSA P-256 except rsa-leaf (RSA-2048).
# Chain-building fixtures: root-cross and root-cross-expired are copies of the root (same subject, same key)
# issued by cross-root, as a CA that moves to a new root sends them (OpenSSL's test/dane-cross.in); loop-a* and
# loop-b* are CAs that issue each other, sixteen certificates a hostile server may send to make path building slow.
set -eu

if [ $# -ne 1 ]; then
	echo "usage: $0 OUTDIR" >&2
	exit 2
fi
OUT=$1
mkdir -p "$OUT"
cd "$OUT"
mkdir -p newcerts
: > index.txt
printf 'unique_subject = no\n' > index.txt.attr

VALID_FROM=20200101000000Z
VALID_TO=20400101000000Z

# SAN is read from the environment by the leaf extension sections; it must always be set.
SAN=DNS:www.example.test
export SAN

cat > openssl.cnf <<'EOF'
[ca]
default_ca = CA_default

[CA_default]
database = index.txt
new_certs_dir = newcerts
rand_serial = yes
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none
email_in_dn = no
preserve = yes

[policy_any]
organizationName = optional
commonName = optional

[req]
distinguished_name = req_dn
prompt = no

[req_dn]
CN = placeholder

[ext_root]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ext_int]
basicConstraints = critical,CA:true,pathlen:1
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ext_int_pl0]
basicConstraints = critical,CA:true,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ext_noca]
basicConstraints = critical,CA:false
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ext_leaf]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = $ENV::SAN
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ext_leaf_noaki]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = $ENV::SAN
subjectKeyIdentifier = none
authorityKeyIdentifier = none

[ext_leaf_nosan]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ext_leaf_client]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
subjectAltName = $ENV::SAN
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ext_leaf_badku]
basicConstraints = critical,CA:false
keyUsage = critical,nonRepudiation
extendedKeyUsage = serverAuth
subjectAltName = $ENV::SAN
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ext_selfsigned]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = $ENV::SAN
subjectKeyIdentifier = hash
EOF

# RSA key generation is the slowest step: run it in the background while the EC certificates are made.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa-leaf.key 2>/dev/null &
RSA_PID=$!

# newkey NAME [rsa] - a key (the pre-generated one for rsa) and a CSR for NAME with subject $SUBJ
newkey() {
	if [ "${2:-}" = rsa ]; then
		wait "$RSA_PID"
		openssl req -config openssl.cnf -new -key "$1.key" -subj "$SUBJ" -out "$1.csr" 2>/dev/null
	else
		openssl req -config openssl.cnf -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-keyout "$1.key" -subj "$SUBJ" -out "$1.csr" 2>/dev/null
	fi
}

# finish NAME - the DER and SPKI DER forms of NAME.pem (`openssl x509` costs 20 ms a run, these do not)
finish() {
	openssl asn1parse -in "$1.pem" -noout -out "$1.der"
	openssl pkey -in "$1.key" -pubout -outform DER -out "$1.spki.der"
	rm -f "$1.csr"
}

# issue NAME ISSUER EXT FROM TO [rsa] - a certificate for NAME (subject $SUBJ, SAN $SAN) signed by ISSUER
issue() {
	newkey "$1" "${6:-}"
	openssl ca -config openssl.cnf -batch -notext -cert "$2.pem" -keyfile "$2.key" -in "$1.csr" -out "$1.pem" \
		-extensions "$3" -startdate "$4" -enddate "$5" 2>/dev/null
	finish "$1"
}

# issue_key NAME ISSUER EXT FROM TO KEY - like issue, for an existing key (a second certificate for that key)
issue_key() {
	cp "$6" "$1.key"
	openssl req -config openssl.cnf -new -key "$1.key" -subj "$SUBJ" -out "$1.csr" 2>/dev/null
	openssl ca -config openssl.cnf -batch -notext -cert "$2.pem" -keyfile "$2.key" -in "$1.csr" -out "$1.pem" \
		-extensions "$3" -startdate "$4" -enddate "$5" 2>/dev/null
	finish "$1"
}

# selfsign NAME EXT FROM TO - a self-signed certificate for NAME (subject $SUBJ)
selfsign() {
	newkey "$1"
	openssl ca -config openssl.cnf -batch -notext -selfsign -keyfile "$1.key" -in "$1.csr" -out "$1.pem" \
		-extensions "$2" -startdate "$3" -enddate "$4" 2>/dev/null
	finish "$1"
}

# Trust anchors.
SUBJ="/O=daneproxy tests/CN=Test Root CA"; selfsign root ext_root $VALID_FROM $VALID_TO
SUBJ="/O=daneproxy tests/CN=Unrelated Root CA"; selfsign other-root ext_root $VALID_FROM $VALID_TO
SUBJ="/O=daneproxy tests/CN=Expired Root CA"; selfsign root-expired ext_root $VALID_FROM 20210101000000Z
SUBJ="/O=daneproxy tests/CN=Cross Root CA"; selfsign cross-root ext_root $VALID_FROM $VALID_TO
# The root again, cross-signed by cross-root: same subject and key as root.pem, so int1 verifies under either.
SUBJ="/O=daneproxy tests/CN=Test Root CA"; issue_key root-cross cross-root ext_root $VALID_FROM $VALID_TO root.key
SUBJ="/O=daneproxy tests/CN=Test Root CA"
issue_key root-cross-expired cross-root ext_root $VALID_FROM 20210101000000Z root.key

# Intermediates.
SUBJ="/O=daneproxy tests/CN=Test Intermediate 1"; issue int1 root ext_int $VALID_FROM $VALID_TO
SUBJ="/O=daneproxy tests/CN=Test Intermediate 2"; issue int2 int1 ext_int_pl0 $VALID_FROM $VALID_TO
SUBJ="/O=daneproxy tests/CN=Expired Intermediate"; issue int-expired root ext_int $VALID_FROM 20210101000000Z
SUBJ="/O=daneproxy tests/CN=Not A CA"; issue int-noca root ext_noca $VALID_FROM $VALID_TO
SUBJ="/O=daneproxy tests/CN=Pathlen Zero Intermediate"; issue int-pl0 root ext_int_pl0 $VALID_FROM $VALID_TO
SUBJ="/O=daneproxy tests/CN=Below Pathlen Zero"; issue int-below-pl0 int-pl0 ext_int_pl0 $VALID_FROM $VALID_TO
# Same subject as int1 but another key: certificates it signs do not verify under the real int1.
SUBJ="/O=daneproxy tests/CN=Test Intermediate 1"; issue int1-impostor root ext_int $VALID_FROM $VALID_TO

# Leaves.
SUBJ="/CN=www.example.test"
SAN=DNS:www.example.test; issue leaf int1 ext_leaf $VALID_FROM $VALID_TO
SAN=DNS:www.example.test; issue leaf2 int2 ext_leaf $VALID_FROM $VALID_TO
SAN=DNS:www.example.test; issue leaf-expired int1 ext_leaf $VALID_FROM 20200201000000Z
SAN=DNS:www.example.test; issue leaf-notyet int1 ext_leaf 20350101000000Z $VALID_TO
SAN=DNS:www.example.test; issue leaf-under-expired int-expired ext_leaf $VALID_FROM $VALID_TO
SAN=DNS:www.example.test; issue leaf-under-expired-root root-expired ext_leaf $VALID_FROM $VALID_TO
SAN=DNS:www.example.test; issue leaf-under-noca int-noca ext_leaf $VALID_FROM $VALID_TO
SAN=DNS:www.example.test; issue leaf-under-pl0 int-below-pl0 ext_leaf $VALID_FROM $VALID_TO
# No authority key identifier, so the issuer is found by name (int1) and only the signature check can tell.
SAN=DNS:www.example.test; issue leaf-impostor int1-impostor ext_leaf_noaki $VALID_FROM $VALID_TO
SAN=DNS:www.example.test; issue leaf-clientauth int1 ext_leaf_client $VALID_FROM $VALID_TO
SAN=DNS:www.example.test; issue leaf-badku int1 ext_leaf_badku $VALID_FROM $VALID_TO
SAN=DNS:www.example.test; issue leaf-other-root other-root ext_leaf $VALID_FROM $VALID_TO
SAN=DNS:www.example.test; selfsign selfsigned ext_selfsigned $VALID_FROM $VALID_TO
SUBJ="/CN=other.example.test"
SAN=DNS:other.example.test; issue leaf-wrongname int1 ext_leaf $VALID_FROM $VALID_TO
SUBJ="/CN=wildcard"
SAN="DNS:*.example.test"; issue leaf-wildcard int1 ext_leaf $VALID_FROM $VALID_TO
SAN="DNS:w*.example.test"; issue leaf-partial int1 ext_leaf $VALID_FROM $VALID_TO
SAN="DNS:*.test"; issue leaf-tldwild int1 ext_leaf $VALID_FROM $VALID_TO
SUBJ="/CN=www.example.test"
issue leaf-cn int1 ext_leaf_nosan $VALID_FROM $VALID_TO
SAN=DNS:other.example.test; issue leaf-san-cn int1 ext_leaf $VALID_FROM $VALID_TO
# A subject with an escape sequence, DEL and two bytes that are not UTF-8 (a T61String keeps them raw): every
# explanation that quotes a subject must stay printable.
printf '[req]\ndistinguished_name = req_dn\nstring_mask = nombstr\n[req_dn]\n' > raw.cnf
SUBJ=$(printf '/CN=evil\033[31m\177\377\376')
openssl req -config raw.cnf -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout leaf-ctrl.key \
	-subj "$SUBJ" -out leaf-ctrl.csr 2>/dev/null
SAN=DNS:other.example.test openssl ca -config openssl.cnf -batch -notext -cert int1.pem -keyfile int1.key \
	-in leaf-ctrl.csr -out leaf-ctrl.pem -extensions ext_leaf -startdate $VALID_FROM -enddate $VALID_TO 2>/dev/null
finish leaf-ctrl
SUBJ="/CN=IP address leaf"
SAN=IP:127.0.0.1; issue leaf-ip int1 ext_leaf $VALID_FROM $VALID_TO
SUBJ="/CN=www.example.test"
SAN=DNS:www.example.test; issue rsa-leaf int1 ext_leaf $VALID_FROM $VALID_TO rsa

# Two CAs that issue each other: seven copies of "Loop A" (issued by Loop B) and eight of "Loop B" (issued by
# Loop A), every copy of a name with that name's one key, and a leaf under Loop A.
SUBJ="/O=daneproxy tests/CN=Loop A"; selfsign loop-a ext_root $VALID_FROM $VALID_TO
SUBJ="/O=daneproxy tests/CN=Loop B"; selfsign loop-b ext_root $VALID_FROM $VALID_TO
for i in 1 2 3 4 5 6 7; do
	SUBJ="/O=daneproxy tests/CN=Loop A"; issue_key "loop-a$i" loop-b ext_root $VALID_FROM $VALID_TO loop-a.key
	SUBJ="/O=daneproxy tests/CN=Loop B"; issue_key "loop-b$i" loop-a ext_root $VALID_FROM $VALID_TO loop-b.key
done
SUBJ="/O=daneproxy tests/CN=Loop B"; issue_key loop-b8 loop-a ext_root $VALID_FROM $VALID_TO loop-b.key
SUBJ="/CN=www.example.test"
SAN=DNS:www.example.test; issue leaf-loop loop-a ext_leaf $VALID_FROM $VALID_TO

# Chains, leaf first.
cat leaf.pem int1.pem > chain-leaf-int1.pem
cat leaf.pem int1.pem root.pem > chain-leaf-int1-root.pem
cp leaf.pem chain-leaf-only.pem
cat rsa-leaf.pem int1.pem > chain-rsa-leaf-int1.pem
cat leaf2.pem int2.pem int1.pem > chain-leaf2-int2-int1.pem
cat leaf2.pem int2.pem > chain-leaf2-int2.pem
cat leaf-expired.pem int1.pem > chain-expired-int1.pem
cat leaf-notyet.pem int1.pem > chain-notyet-int1.pem
cat leaf-under-expired.pem int-expired.pem root.pem > chain-under-expired.pem
cat leaf-under-expired-root.pem root-expired.pem > chain-under-expired-root.pem
cat leaf-under-noca.pem int-noca.pem root.pem > chain-under-noca.pem
cat leaf-under-pl0.pem int-below-pl0.pem int-pl0.pem root.pem > chain-under-pl0.pem
cat leaf-impostor.pem int1.pem > chain-impostor.pem
cat leaf-clientauth.pem int1.pem > chain-clientauth-int1.pem
cat leaf-badku.pem int1.pem > chain-badku-int1.pem
cat leaf-other-root.pem other-root.pem > chain-other-root.pem
cp selfsigned.pem chain-selfsigned.pem
cat leaf-wrongname.pem int1.pem > chain-wrongname-int1.pem
cat leaf-wildcard.pem int1.pem > chain-wildcard-int1.pem
cat leaf-partial.pem int1.pem > chain-partial-int1.pem
cat leaf-tldwild.pem int1.pem > chain-tldwild-int1.pem
cat leaf-cn.pem int1.pem > chain-cn-int1.pem
cat leaf-san-cn.pem int1.pem > chain-san-cn-int1.pem
cat leaf-ip.pem int1.pem > chain-ip-int1.pem
cat leaf-ctrl.pem int1.pem > chain-ctrl-int1.pem
# The root sent only as a cross-signed copy, with its cross-signer (test/dane-cross.in case 1).
cat leaf.pem int1.pem root-cross.pem cross-root.pem > chain-cross.pem
# The cross-signed copy first, the self-signed root after it: the first issuer in wire order leads nowhere.
cat leaf.pem int1.pem root-cross.pem root.pem > chain-cross-then-root.pem
# Expired and valid cross-certificates of the same root, in both orders.
cat leaf.pem int1.pem root-cross-expired.pem root-cross.pem cross-root.pem > chain-cross-expired-first.pem
cat leaf.pem int1.pem root-cross.pem root-cross-expired.pem cross-root.pem > chain-cross-valid-first.pem
cat leaf-loop.pem loop-a1.pem loop-a2.pem loop-a3.pem loop-a4.pem loop-a5.pem loop-a6.pem loop-a7.pem \
	loop-b1.pem loop-b2.pem loop-b3.pem loop-b4.pem loop-b5.pem loop-b6.pem loop-b7.pem loop-b8.pem > chain-loop.pem

rm -rf newcerts index.txt* serial* openssl.cnf raw.cnf
