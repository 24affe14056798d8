#!/bin/sh
# tests/skip-python.sh TEST: the end-to-end tests' LOG_COMPILER when
# configure found no python3. Exit status 77 is automake's SKIP (which
# .ci/run counts as a failure: CI installs python3).
echo "SKIP: $1: python3 was not found at configure time (install python3, re-run configure)"
exit 77
