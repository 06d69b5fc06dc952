#!/bin/sh
# check-layers.sh SOURCE_DIR - the layering of the source tree, checked: every #include "x.h" of a project header
# must name a header of the same folder or of a folder in a lower layer (README "Layout"). A violation, an include
# of a header that does not exist in the tree, or a header found in two folders fails the test.
#   layer 0  config/util
#   layer 1  config  resolver  proxy/dane  proxy/http  proxy/ca
#   layer 2  proxy/tls
#   layer 3  proxy/origin
#   layer 4  proxy/daemon
#   layer 5  proxy/cli
#   layer 6  proxy (main.c)
set -eu
top=$1
cd "$top"
layer_of() {
	case $1 in
	config/util) echo 0 ;;
	config | resolver | proxy/dane | proxy/http | proxy/ca) echo 1 ;;
	proxy/tls) echo 2 ;;
	proxy/origin) echo 3 ;;
	proxy/daemon) echo 4 ;;
	proxy/cli) echo 5 ;;
	proxy) echo 6 ;;
	*) echo "?" ;;
	esac
}
dirs="config/util config resolver proxy/dane proxy/http proxy/ca proxy/tls proxy/origin proxy/daemon proxy/cli proxy"
bad=0
checked=0
for d in $dirs; do
	for f in "$d"/*.c "$d"/*.h; do
		[ -f "$f" ] || continue
		for h in $(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f"); do
			found=""
			for hd in $dirs; do
				[ -f "$hd/$h" ] && found="$found $hd"
			done
			found=${found# }
			checked=$((checked + 1))
			case $found in
			"") echo "$f: includes \"$h\", which is in no layer folder"; bad=$((bad + 1)); continue ;;
			*" "*) echo "$f: \"$h\" exists in several folders: $found"; bad=$((bad + 1)); continue ;;
			esac
			[ "$found" = "$d" ] && continue
			if [ "$(layer_of "$found")" -ge "$(layer_of "$d")" ]; then
				echo "$f (layer $(layer_of "$d")) includes $found/$h (layer $(layer_of "$found")): not from below"
				bad=$((bad + 1))
			fi
		done
	done
done
echo "layers: $checked includes checked, $bad violations"
[ "$bad" -eq 0 ]
