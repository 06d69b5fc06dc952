#!/bin/sh
# check-example.sh DANEPROXY EXAMPLE - the example configuration passes daneproxy -t as shipped, and again with
# every commented-out setting and route switched on (its user set to nobody, which exists everywhere), so no
# suggestion in it is wrong.
set -eu
daneproxy=$1
example=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
"$daneproxy" -t -c "$example"
sed -e 's/^;\([a-z_]* = \)/\1/' -e 's/^;\(\[route \)/\1/' -e 's/^user = .*/user = nobody/' "$example" >"$tmp/all.conf"
n=$(grep -c '^;[a-z_]* = \|^;\[route ' "$example")
[ "$n" -gt 5 ] || { echo "FAIL: only $n commented settings found in the example"; exit 1; }
if grep -q '^;[a-z_]* = \|^;\[route ' "$tmp/all.conf"; then
	echo "FAIL: commented settings left"
	exit 1
fi
"$daneproxy" -t -c "$tmp/all.conf"
echo "ok: the example is valid as shipped and with its $n commented settings switched on"
