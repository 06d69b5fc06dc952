#!/bin/sh
# check-install.sh BUILD_DIR SRC BINDIR MANDIR DOCDIR UNITDIR SYSCONFDIR - `cmake --install` into a scratch DESTDIR
# (absolute install directories as CMake computed them): the binary, both manuals, the example, the unit with
# these paths, and the configuration, which works as installed and is never overwritten by a second install.
set -eu
build=$1 src=$2 bindir=$3 mandir=$4 docdir=$5 unitdir=$6 sysconfdir=$7
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
dest=$tmp/root
bad=0
complain() {
	echo "FAIL: $*"
	bad=$((bad + 1))
}

DESTDIR=$dest cmake --install "$build" >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; echo "FAIL: cmake --install"; exit 1; }
conf=$dest$sysconfdir/daneproxy/daneproxy.conf
[ -x "$dest$bindir/daneproxy" ] || complain "no $bindir/daneproxy"
cmp -s "$src/config/man/daneproxy.8" "$dest$mandir/man8/daneproxy.8" || complain "no $mandir/man8/daneproxy.8"
cmp -s "$src/config/man/daneproxy.conf.5" "$dest$mandir/man5/daneproxy.conf.5" || complain "no $mandir/man5/daneproxy.conf.5"
cmp -s "$src/config/daneproxy.conf.example" "$dest$docdir/daneproxy.conf.example" || complain "no $docdir/daneproxy.conf.example"
cmp -s "$src/config/daneproxy.conf.example" "$conf" || complain "no $sysconfdir/daneproxy/daneproxy.conf from the example"
unit=$dest$unitdir/daneproxy.service
if [ -f "$unit" ]; then
	grep -qxF "ExecStart=$bindir/daneproxy -c $sysconfdir/daneproxy/daneproxy.conf --state-dir /var/lib/daneproxy" "$unit" ||
		complain "the installed unit's ExecStart does not name $bindir and $sysconfdir"
	grep -qxF "ExecReload=$bindir/daneproxy -t -c $sysconfdir/daneproxy/daneproxy.conf" "$unit" ||
		complain "the installed unit's ExecReload does not check $sysconfdir/daneproxy/daneproxy.conf"
	if grep '@[A-Z_]*@' "$unit"; then complain "placeholders left in the installed unit"; fi
else
	complain "no $unitdir/daneproxy.service"
fi
# The installed program accepts the installed configuration.
"$dest$bindir/daneproxy" -t -c "$conf" || complain "daneproxy -t rejects the installed configuration"
# An operator's edits survive a second install.
echo "; edited by the operator" >>"$conf"
DESTDIR=$dest cmake --install "$build" >"$tmp/install2.log" 2>&1 || { cat "$tmp/install2.log"; complain "second cmake --install"; }
tail -n 1 "$conf" | grep -q 'edited by the operator' || complain "a second install overwrote $sysconfdir/daneproxy/daneproxy.conf"
grep -q "Kept: $conf" "$tmp/install2.log" || complain "the second install did not say it kept the configuration"
find "$dest" -type f | sed "s#^$dest##" | sort
if [ "$bad" -gt 0 ]; then
	echo "$bad problems"
	exit 1
fi
echo "ok"
