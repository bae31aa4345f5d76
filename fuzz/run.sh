#!/bin/sh
# Runs every fuzz target (or those named after SECONDS) for SECONDS each (default 60), one
# after another on one core, at the lowest priority; then prints one line of figures per
# target. New interesting inputs go to corpus/TARGET, crashes to artifacts/TARGET; the full
# libFuzzer output of each run is in $LOGS/TARGET.log (default target/fuzz-logs).
#
#   fuzz/run.sh 300                  # every target, 5 minutes each
#   fuzz/run.sh 60 sntp ipmsg        # two targets, a minute each
#
# Afterwards: `cargo +nightly fuzz cmin TARGET corpus/TARGET` keeps the corpus small, and a
# crash is fixed in the decoder and its input kept as seeds/TARGET/crash-WHAT.
set -eu
cd "$(dirname "$0")"
secs=${1:-60}
[ $# -gt 0 ] && shift
targets=${*:-$(cargo +nightly fuzz list)}
logs=${LOGS:-target/fuzz-logs}
mkdir -p "$logs"
nice -n 10 cargo +nightly fuzz build
printf '%-15s %6s %11s %8s %6s %7s %7s %7s\n' target seconds execs exec/s cov features corpus crashes
for t in $targets; do
    mkdir -p "corpus/$t"
    # -timeout: a single input that takes 10 s is a hang; -rss_limit_mb: one that needs
    # 2 GiB is unbounded memory. Both count as crashes.
    nice -n 19 cargo +nightly fuzz run "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
        -print_final_stats=1 >"$logs/$t.log" 2>&1 || true
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$t.log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$logs/$t.log")
    last=$(grep -E '^#[0-9]+' "$logs/$t.log" | tail -n 1)
    cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    corpus=$(ls "corpus/$t" | wc -l)
    crashes=$(ls "artifacts/$t" 2>/dev/null | wc -l)
    printf '%-15s %6s %11s %8s %6s %7s %7s %7s\n' "$t" "$secs" "${execs:-?}" "${rate:-?}" \
        "${cov:-?}" "${ft:-?}" "$corpus" "$crashes"
done
