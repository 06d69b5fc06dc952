#!/bin/sh
# check-manuals.sh - the manuals (config/man) kept honest against the program.
#
#   check-manuals.sh lint SRC                      mandoc -T lint -W all finds nothing in either page (references to
#                                                  pages not installed here are not counted); exit 77 without mandoc
#   check-manuals.sh keys SRC CONFIG_KEYS DANEPROXY
#                                                  daneproxy.conf(5) documents exactly the keys the loader knows
#                                                  (config-keys), each under its section with the loader's type, a
#                                                  default and an example that loads; its EXAMPLES pass daneproxy -t
#   check-manuals.sh options SRC DANEPROXY         daneproxy(8) documents exactly the serve options (the getopt
#                                                  table in the source and `serve --help`), has a subsection per
#                                                  subcommand, and each tool's --help options and its subsection agree
set -eu
mode=$1
src=$2
man8=$src/config/man/daneproxy.8
man5=$src/config/man/daneproxy.conf.5
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
bad=0

# complain MESSAGE - one problem; the test fails at the end, after every problem is listed.
complain() {
	echo "FAIL: $*"
	bad=$((bad + 1))
}

# compare WHAT KNOWN DOCUMENTED - both sorted lists; every line in one and not the other is a problem.
compare() {
	comm -23 "$2" "$3" | while IFS= read -r l; do echo "FAIL: $1: \"$l\" is not documented"; done
	comm -13 "$2" "$3" | while IFS= read -r l; do echo "FAIL: $1: \"$l\" is documented but unknown to the program"; done
	n=$( (comm -23 "$2" "$3"; comm -13 "$2" "$3") | wc -l)
	bad=$((bad + n))
}

case $mode in
lint)
	if ! command -v mandoc >/dev/null 2>&1; then
		echo "skip: mandoc is not installed (apt-get install mandoc, or sh .ci/install-deps test)"
		exit 77
	fi
	for page in "$man8" "$man5"; do
		# Cross-references resolve once the pages are installed; sd_notify(3) comes with libsystemd-dev.
		mandoc -T lint -W all "$page" >"$tmp/lint" 2>&1 || true
		grep -v -e 'referenced manual not found' -e 'outdated mandoc.db' "$tmp/lint" >"$tmp/left" || true
		if [ -s "$tmp/left" ]; then
			complain "mandoc -T lint $(basename "$page"):"
			cat "$tmp/left"
		fi
		mandoc -T utf8 "$page" >"$tmp/out" 2>/dev/null || complain "mandoc cannot render $(basename "$page")"
		[ "$(wc -l <"$tmp/out")" -gt 50 ] || complain "$(basename "$page") renders to almost nothing"
	done
	echo "lint: daneproxy.8 and daneproxy.conf.5 checked with mandoc $(dpkg-query -W -f='${Version}' mandoc 2>/dev/null || echo '?')"
	;;

keys)
	keys_tool=$3
	daneproxy=$4
	"$keys_tool" >"$tmp/known.tsv"
	[ -s "$tmp/known.tsv" ] || { echo "FAIL: config-keys listed nothing"; exit 1; }
	# One line per documented key: section, key, type, has "Default:", example line. Entries are
	# ".It Cm KEY No = Ar TYPE" items in the ".Ss [SECTION]" subsections of SECTIONS.
	awk '
	function flush() {
		if (key != "") printf "%s\t%s\t%s\t%d\t%s\n", sec, key, type, def, ex
		key = ""
	}
	/^\.Sh / { flush(); insec = ($2 == "SECTIONS"); sec = ""; next }
	!insec { next }
	/^\.Ss / { flush(); s = $0; sub(/^\.Ss \[/, "", s); sub(/\].*$/, "", s); split(s, w, " "); sec = w[1]; next }
	/^\.It Cm / && sec != "" {
		flush(); key = $3; type = $0; def = 0; ex = ""
		if (!sub(/^.* Ar /, "", type)) type = "?"
		next
	}
	/^\.El/ { flush(); next }
	key != "" && /^Default:/ { def = 1 }
	key != "" && /^\.Dl / && ex == "" { ex = $0; sub(/^\.Dl /, "", ex) }
	END { flush() }
	' "$man5" >"$tmp/doc.tsv"
	cut -f1,2 "$tmp/known.tsv" | tr '\t' ' ' | sort >"$tmp/known"
	cut -f1,2 "$tmp/doc.tsv" | tr '\t' ' ' | sort >"$tmp/doc"
	dups=$(uniq -d "$tmp/doc")
	[ -z "$dups" ] || complain "documented twice: $dups"
	compare "daneproxy.conf(5) key" "$tmp/known" "$tmp/doc"
	# Each entry: the loader's type name, a default, an example of this very key; the examples must load.
	: >"$tmp/examples.ini"
	while IFS="$(printf '\t')" read -r sec key type def ex; do
		want=$(awk -F '\t' -v s="$sec" -v k="$key" '$1 == s && $2 == k { print $3 }' "$tmp/known.tsv")
		[ -z "$want" ] || [ "$want" = "$type" ] || complain "[$sec] $key: documented as \"$type\", the loader says \"$want\""
		[ "$def" = 1 ] || complain "[$sec] $key: no \"Default:\" line"
		case $ex in
		"$key = "*) ;;
		*) complain "[$sec] $key: no example \".Dl $key = ...\" (found \"$ex\")"; continue ;;
		esac
		case $sec in route | smtp) sec="$sec example" ;; esac
		# The account in the examples may not exist here; nobody does, everywhere.
		[ "$key" = user ] && ex="user = nobody"
		printf '[%s]\n%s\n' "$sec" "$ex" >>"$tmp/examples.ini"
	done <"$tmp/doc.tsv"
	"$keys_tool" --load "$tmp/examples.ini" >"$tmp/example-errors"
	if [ -s "$tmp/example-errors" ]; then
		complain "examples in daneproxy.conf(5) the loader rejects:"
		cat "$tmp/example-errors"
	fi
	# The EXAMPLES section: a whole configuration, valid under daneproxy -t.
	awk '/^\.Sh EXAMPLES/ { on = 1; next } /^\.Sh / { on = 0 } on && /^\.Bd / { lit = 1; next } on && /^\.Ed/ { lit = 0 }
	     on && lit' "$man5" | sed 's/^user = .*/user = nobody/' >"$tmp/example.conf"
	[ -s "$tmp/example.conf" ] || complain "daneproxy.conf(5) EXAMPLES has no configuration"
	"$daneproxy" -t -c "$tmp/example.conf" >"$tmp/t.out" 2>&1 || { complain "EXAMPLES of daneproxy.conf(5):"; cat "$tmp/t.out"; }
	echo "keys: $(wc -l <"$tmp/known") known to the loader, $(wc -l <"$tmp/doc") documented in daneproxy.conf(5)"
	;;

options)
	daneproxy=$3
	serve_src="$src/proxy/cli/cmd_serve.c $src/proxy/origin/runtime.h"
	# The getopt tables: {"name", no/required/optional_argument, ...} rows, and the short-option string.
	# shellcheck disable=SC2086
	sed -n 's/.*{"\([a-z][a-z0-9-]*\)", *\(no\|required\|optional\)_argument.*/--\1/p' $serve_src >"$tmp/src"
	# shellcheck disable=SC2086
	rows=$(grep -c '_argument, *NULL' $serve_src | awk -F: '{ n += $NF } END { print n }')
	[ "$rows" -eq "$(wc -l <"$tmp/src")" ] || complain "read $(wc -l <"$tmp/src") long options of $rows getopt rows: update this script"
	shorts=$(sed -n 's/.*getopt_long(argc, argv, "\([^"]*\)".*/\1/p' "$src/proxy/cli/cmd_serve.c" | head -n 1 | tr -d ':')
	[ -n "$shorts" ] || complain "no getopt_long short-option string in cmd_serve.c"
	for ch in $(echo "$shorts" | sed 's/./& /g'); do echo "-$ch"; done >>"$tmp/src"
	"$daneproxy" serve --help >"$tmp/help"
	grep -oE -- '--[a-z][a-z0-9-]*' "$tmp/help" >>"$tmp/src" || true
	grep -oE -- '(^| |\[)-[a-z]( |$)' "$tmp/help" | tr -d ' [' >>"$tmp/src" || true
	sort -u "$tmp/src" >"$tmp/known"
	# Documented: every Fl on the .It lines of OPTIONS ("Fl Fl name" is --name, "Fl c" is -c).
	fl_tokens='{ for (i = 1; i <= NF; i++) if ($i == "Fl" || $i == ".Fl") {
		if ($(i + 1) == "Fl") { print "--" $(i + 2); i += 2 } else print "-" $(i + 1) } }'
	awk '/^\.Sh / { on = ($2 == "OPTIONS"); next } on && /^\.It /' "$man8" | awk "$fl_tokens" |
		sed 's/[,.;]*$//' | sort -u >"$tmp/doc"
	compare "daneproxy(8) OPTIONS, serve option" "$tmp/known" "$tmp/doc"
	# Subcommands: each one `daneproxy --help` lists has ".Ss daneproxy NAME", and its options match its --help.
	"$daneproxy" --help | awk '/^subcommands:/ { on = 1; next } on && /^  [a-z]/ { print $1 } on && /^$/ { on = 0 }' >"$tmp/subs"
	[ -s "$tmp/subs" ] || complain "daneproxy --help lists no subcommand"
	for sub in $(cat "$tmp/subs"); do
		grep -q "^\.Ss daneproxy $sub\$" "$man8" || { complain "daneproxy(8) has no \".Ss daneproxy $sub\""; continue; }
		[ "$sub" = serve ] && continue   # its options are OPTIONS, checked above
		"$daneproxy" "$sub" --help >"$tmp/subhelp" 2>&1 || true
		grep -oE -- '--[a-z][a-z0-9-]*' "$tmp/subhelp" | sort -u >"$tmp/subknown" || true
		awk -v s="daneproxy $sub" '/^\.S[sh] / { on = ($0 == ".Ss " s); next } on' "$man8" | awk "$fl_tokens" |
			sed 's/[,.;]*$//' | grep -- '^--' | sort -u >"$tmp/subdoc" || true
		compare "daneproxy(8) \"$sub\" option" "$tmp/subknown" "$tmp/subdoc"
	done
	echo "options: $(wc -l <"$tmp/known") serve options, $(wc -l <"$tmp/subs") subcommands checked against daneproxy(8)"
	;;
*)
	echo "usage: $0 lint|keys|options SRC ..." >&2
	exit 2
	;;
esac
if [ "$bad" -gt 0 ]; then
	echo "$bad problems"
	exit 1
fi
echo "ok"
