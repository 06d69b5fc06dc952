#!/bin/sh
# check-unit.sh SRC DANEPROXY - the systemd unit (config/systemd/daneproxy.service.in), filled in with the built
# binary's directory: `systemd-analyze verify` reports nothing at all (warnings count: verify exits 0 on an
# unknown key), its Documentation= pages resolve to our manuals, the offline security exposure stays at 2.0 or
# below, and the directives issue 13 asks for are there. A broken copy must be caught (the check checks itself).
# Needs no running systemd; exit 77 ("skip") only when systemd-analyze is not installed.
set -eu
src=$1
daneproxy=$2
if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "skip: systemd-analyze is not installed (package systemd)"
	exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
bad=0
complain() {
	echo "FAIL: $*"
	bad=$((bad + 1))
}

bindir=$(cd "$(dirname "$daneproxy")" && pwd)
unit=$tmp/daneproxy.service
sed -e "s#@DANEPROXY_BINDIR@#$bindir#g" -e "s#@DANEPROXY_SYSCONFDIR@#/etc#g" "$src/config/systemd/daneproxy.service.in" >"$unit"
if grep '@[A-Z_]*@' "$unit"; then complain "placeholders left in the unit"; fi
# Documentation=man:daneproxy(8) man:daneproxy.conf(5) is checked with man(1): point it at our pages.
mkdir -p "$tmp/man/man8" "$tmp/man/man5"
cp "$src/config/man/daneproxy.8" "$tmp/man/man8/"
cp "$src/config/man/daneproxy.conf.5" "$tmp/man/man5/"

# verify UNIT - systemd-analyze verify; prints what it said, fails on any output or status.
verify() {
	rc=0
	MANPATH=$tmp/man systemd-analyze verify "$1" >"$tmp/verify.out" 2>&1 || rc=$?
	cat "$tmp/verify.out"
	[ "$rc" -eq 0 ] && [ ! -s "$tmp/verify.out" ]
}

echo "== systemd-analyze verify ($(systemd-analyze --version | head -n 1))"
verify "$unit" || complain "systemd-analyze verify reported problems"

echo "== systemd-analyze security --offline=yes"
rc=0
systemd-analyze security --offline=yes --threshold=20 "$unit" >"$tmp/security.out" 2>&1 || rc=$?
grep -E 'Overall exposure' "$tmp/security.out" || { cat "$tmp/security.out"; complain "no exposure level"; }
[ "$rc" -eq 0 ] || { grep '✗' "$tmp/security.out" || true; complain "exposure above 2.0"; }

echo "== directives"
for d in 'Type=notify' 'NotifyAccess=main' 'ExecReload=/bin/kill -HUP $MAINPID' 'StateDirectory=daneproxy' \
	'DynamicUser=yes' 'NoNewPrivileges=yes' 'ProtectSystem=strict' 'ProtectHome=yes' 'PrivateTmp=yes' \
	'CapabilityBoundingSet=' '#AmbientCapabilities=CAP_NET_BIND_SERVICE' 'SystemCallFilter=@system-service' \
	'SystemCallArchitectures=native'; do
	grep -qxF "$d" "$unit" || complain "no line \"$d\""
done
grep -q '^RestrictAddressFamilies=.*AF_INET6' "$unit" || complain "no RestrictAddressFamilies= with AF_INET6"
if grep -q '^AmbientCapabilities=' "$unit"; then
	complain "AmbientCapabilities= must stay commented out (ports below 1024 only)"
fi
grep -q "^ExecStart=$bindir/daneproxy -c /etc/daneproxy/daneproxy.conf " "$unit" || complain "ExecStart does not run daneproxy -c"

echo "== a broken copy is caught"
sed 's/^Type=notify$/Type=notify\nNoSuchDirective=1/' "$unit" >"$tmp/broken.service"
if verify "$tmp/broken.service" >/dev/null; then
	complain "an unknown directive went unreported"
fi
sed "s#^ExecStart=$bindir/daneproxy#ExecStart=$tmp/no-such-binary#" "$unit" >"$tmp/broken.service"
if verify "$tmp/broken.service" >/dev/null; then
	complain "a missing ExecStart binary went unreported"
fi

if [ "$bad" -gt 0 ]; then
	echo "$bad problems"
	exit 1
fi
echo "ok"
