#!/usr/bin/env bash
# Echo benchmarks: builds taojie (release) and the C epoll reference, drives every peer with
# `taojie bench --json` (bench/run.py, whose options this passes on; see --help), then measures
# memory per idle connection (bench/idle_conns.py) unless --no-memory is given.
set -euo pipefail
here=$(dirname "$0")
args=() memory=1
for a in "$@"; do
    case "$a" in
        --no-memory) memory=0 ;;
        -h|--help) exec python3 "$here/run.py" --help ;;
        *) args+=("$a") ;;
    esac
done
status=0
python3 "$here/run.py" "${args[@]}" || status=$?
if [ "$memory" = 1 ]; then
    echo
    python3 "$here/idle_conns.py" --no-build || status=$?
fi
exit "$status"
