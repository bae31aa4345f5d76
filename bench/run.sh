#!/usr/bin/env bash
# Echo benchmarks: builds taojie (release) and the C epoll reference, then drives every peer with
# `taojie bench --json` and prints a markdown report. Options go to bench/run.py (--help).
set -euo pipefail
cd "$(dirname "$0")"
exec python3 run.py "$@"
