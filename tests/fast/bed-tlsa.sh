#!/usr/bin/env bash
# bed-tlsa.sh DIR LABEL [RDATA...] - replace the TLSA RRset of LABEL.dane.test at every TLSA port of the test bed
# in DIR (tests/testbed) with RDATA (none: no TLSA owner at all, a secure NXDOMAIN), re-sign dane.test with the
# bed's own key, make NSD reload it and wait until it serves the new RRset. Only for a bed a test started for
# itself: every other user of that bed would see the change.
set -eu
set -o pipefail
dir=$1 label=$2
shift 2
z=$dir/zones
# shellcheck disable=SC1091
. "$dir/testbed.env"
ports=${TESTBED_TLSA_PORTS//,/ }
tmp=$z/dane.test.zone.new
awk -v label="$label" -v ports="$ports" '
	BEGIN { n = split(ports, P, " "); for (i = 1; i <= n; i++) drop["_" P[i] "._tcp." label] = 1 }
	$2 == "TLSA" && ($1 in drop) { next }
	$2 == "SOA" { $5 = $5 + 1 }
	{ print }' "$z/dane.test.zone" >"$tmp"
for p in $ports; do
	for r in "$@"; do
		printf '_%s._tcp.%s\tTLSA\t%s\n' "$p" "$label" "$r" >>"$tmp"
	done
done
mv "$tmp" "$z/dane.test.zone"
key=$(ls "$dir"/keys/Kdane.test.+013+*.private | head -1)
# As the bed signs: valid from a day ago (a signature that starts this second is not yet valid to every
# validator), for 30 days.
now=$(date +%s)
ldns-signzone -i $((now - 86400)) -e $((now + 30 * 86400)) -o dane.test. -f "$z/dane.test.signed.new" \
	"$z/dane.test.zone" "${key%.private}"
mv "$z/dane.test.signed.new" "$z/dane.test.signed"
kill -HUP "$(cat "$dir/nsd.pid")"
# Served? The RRset at the first TLS port, as rdata lines, against what was asked for (order aside).
want=$(for r in "$@"; do echo "$r" | tr 'A-F' 'a-f'; done | sort)
port=${TESTBED_TLS_PORT}
for _ in $(seq 1 500); do
	got=$(drill -p "$TESTBED_DNS_PORT" "_$port._tcp.$label.dane.test" TLSA @127.0.0.1 2>/dev/null |
		awk '$1 !~ /^;/ && $4 == "TLSA" { print $5, $6, $7, $8 }' | tr 'A-F' 'a-f' | sort) || got=""
	[ "$got" = "$want" ] && exit 0
	sleep 0.02
done
echo "bed-tlsa.sh: NSD of $dir does not serve the new TLSA RRset of $label" >&2
exit 1
