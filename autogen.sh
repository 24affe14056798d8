#!/bin/sh
# Regenerate the autotools build files. Run once after a fresh clone.
set -e
cd "$(dirname "$0")"
for tool in autoreconf aclocal automake libtoolize pkg-config; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "autogen.sh: '$tool' not found; install autoconf automake libtool pkg-config" >&2
		exit 1
	fi
done
mkdir -p m4 build-aux
autoreconf -fi
