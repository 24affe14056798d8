#!/bin/sh
# tests/install.sh: `make install DESTDIR=...' puts every file where it
# belongs: berthd and berth, libberth with its header and berth.pc, the
# man pages, a page for each libberth function that opens libberth(3)
# (`man berth_acquire'), the systemd unit naming the installed berthd,
# and bash completion; then `make uninstall' removes every one of them.
#
# make check runs it from the top build directory, with srcdir set by
# automake's test harness. It asks this build's Makefile (GNU make's
# --eval) where each thing goes, so it holds for any --prefix and
# --with-systemdsystemunitdir. Exit 0 pass, 1 fail, 99 hard error.

set -u
srcdir=${srcdir:-.}
status=0
fail() { echo "FAIL: $*"; status=1; }

# Run make as a user would, not as a job of make check's make.
unset MAKEFLAGS MFLAGS MAKELEVEL
mk() { make --no-print-directory "$@"; }


tmp=$(mktemp -d "${TMPDIR:-/tmp}/berth-install.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/root

if ! mk install DESTDIR="$dest" >"$tmp/install.log" 2>&1; then
	cat "$tmp/install.log"
	echo "FAIL: make install DESTDIR=$dest"
	exit 1
fi

# Where each thing goes: the Makefile's variables, fully expanded.
mk -s BERTH_TEST_VARS="bindir libdir includedir pkgconfigdir mandir man1dir \
    man3dir man8dir bashcompletiondir systemdsystemunitdir" \
    --eval='print-install-dirs: ; @$(foreach v,$(BERTH_TEST_VARS),echo "$(v)='"'"'$($(v))'"'"'";)' \
    print-install-dirs >"$tmp/dirs" || exit 99
. "$tmp/dirs"
case ${man3dir:-} in
/*) ;;
*) echo "cannot read the install directories from the Makefile"; exit 99 ;;
esac

# need TEST PATH WHAT: PATH (under DESTDIR) passes test TEST.
need() {
	test "$1" "$dest$2" || fail "make install put no $3 at $dest$2"
}

need -x "$bindir/berthd" "berthd"
need -x "$bindir/berth" "berth"
need -f "$libdir/libberth.so.1" "libberth"
need -f "$libdir/libberth.so" "libberth's link for -lberth"
need -f "$includedir/berth.h" "berth.h"
need -f "$pkgconfigdir/berth.pc" "berth.pc"
need -f "$man8dir/berthd.8" "berthd(8)"
need -f "$man1dir/berth.1" "berth(1)"
need -f "$man3dir/libberth.3" "libberth(3)"
need -f "$bashcompletiondir/berth" "bash completion"

# Every function libberth(3) documents, and every one libberth exports,
# has its own page in man3, and that page opens libberth(3).
awk '($1 == ".Fn" || $1 == ".Fo") && $2 ~ /^berth_[a-z0-9_]*[a-z0-9]$/ {
	print $2 }' "$srcdir/docs/libberth.3" | sort -u >"$tmp/documented"
test -s "$tmp/documented" || { echo "no functions in docs/libberth.3"; exit 99; }
if command -v nm >/dev/null; then
	nm -D --defined-only "$dest$libdir/libberth.so.1" 2>/dev/null |
	    awk '$2 == "T" && $3 ~ /^berth_/ { print $3 }' | sort -u \
	    >"$tmp/exported"
	for f in $(comm -13 "$tmp/documented" "$tmp/exported"); do
		fail "libberth exports $f, which docs/libberth.3 does not document"
	done
else
	echo "note: no nm: the exported functions are not compared"
	: >"$tmp/exported"
fi
n=0
for f in $(sort -u "$tmp/documented" "$tmp/exported"); do
	page=$dest$man3dir/$f.3
	if ! test -f "$page"; then
		fail "no page for $f: \`man $f' finds nothing"
		continue
	fi
	n=$((n + 1))
	echo "$f" >>"$tmp/pages"
	test "$(cat "$page")" = ".so man3/libberth.3" ||
	    fail "$page is not a link to libberth(3): $(head -c 200 "$page")"
done
echo "ok: $n pages for libberth's functions link to libberth(3)"
# man follows each of them to libberth(3): man -w NAME resolves the .so
# (one call for all), and man -l renders one of them, from the top of
# the man directory as man does. (Rendering every one takes a minute;
# they are the same line, checked above.)
if [ $n -gt 0 ] && command -v man >/dev/null; then
	MANPATH=$dest$mandir man -w $(cat "$tmp/pages") >"$tmp/man-w" 2>&1
	while read -r f && read -r got <&3; do
		[ "$got" = "$dest$man3dir/libberth.3" ] ||
		    fail "man $f does not open libberth(3): man -w says $got"
	done <"$tmp/pages" 3<"$tmp/man-w"
	[ "$(wc -l <"$tmp/man-w")" -eq $n ] ||
	    fail "man -w: $(cat "$tmp/man-w")"
	f=$(grep -x berth_acquire "$tmp/pages" || head -1 "$tmp/pages")
	out=$(cd "$dest$mandir" && MANPAGER=cat MANWIDTH=80 man -l "man3/$f.3" 2>&1)
	case $out in
	*"can't open"* | *"failed .so"*) fail "man -l cannot follow man3/$f.3:" \
	    "$(printf '%s\n' "$out" | head -3)" ;;
	LIBBERTH\(3\)*berth_open*) echo "ok: man -l man3/$f.3 opens libberth(3)" ;;
	*) fail "man -l man3/$f.3 does not open libberth(3):" \
	    "$(printf '%s\n' "$out" | head -3)" ;;
	esac
elif [ $n -gt 0 ]; then
	echo "note: no man: the pages are not opened"
fi

# The unit: the example with ExecStart naming the berthd just installed,
# unless configure was told to install none.
case $(./config.status --config) in
*--without-systemdsystemunitdir* | *--with-systemdsystemunitdir=no*)
	unit_wanted=no ;;
*)	unit_wanted=yes ;;
esac
if [ $unit_wanted = no ]; then
	echo "note: configured --without-systemdsystemunitdir: no unit expected"
	if [ -n "$(find "$dest" -name berthd.service)" ]; then
		fail "a unit was installed all the same"
	fi
elif [ -z "$systemdsystemunitdir" ]; then
	fail "the Makefile has no systemdsystemunitdir: make install puts no unit"
else
	unit=$dest$systemdsystemunitdir/berthd.service
	need -f "$systemdsystemunitdir/berthd.service" "systemd unit"
	if [ -f "$unit" ]; then
		exec_start=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$unit")
		[ "$exec_start" = "$bindir/berthd" ] ||
		    fail "the unit's ExecStart is '$exec_start', not the installed $bindir/berthd"
		grep -v '^ExecStart=' "$srcdir/docs/examples/berthd.service" \
		    >"$tmp/unit.want"
		grep -v '^ExecStart=' "$unit" >"$tmp/unit.got"
		cmp -s "$tmp/unit.want" "$tmp/unit.got" ||
		    fail "the unit differs from docs/examples/berthd.service" \
		    "beyond ExecStart: $(diff "$tmp/unit.want" "$tmp/unit.got")"
		echo "ok: unit at $systemdsystemunitdir/berthd.service runs $exec_start"
	fi
fi

# make uninstall leaves no file behind.
if ! mk uninstall DESTDIR="$dest" >"$tmp/uninstall.log" 2>&1; then
	cat "$tmp/uninstall.log"
	fail "make uninstall DESTDIR=$dest"
fi
left=$(find "$dest" ! -type d | sed "s|^$dest||")
[ -z "$left" ] || fail "make uninstall left: $left"

[ $status -eq 0 ] && echo "ok: make install and make uninstall"
exit $status
