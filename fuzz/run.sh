#!/bin/sh
# Runs every fuzz target (or those named after SECONDS) for SECONDS each (default 60), one
# after another on one core, at the lowest priority, then minimizes its corpus; prints one
# line of figures per target. New interesting inputs go to corpus/TARGET, crashes to
# artifacts/TARGET; the full libFuzzer output of each run is in $LOGS/TARGET.log (default
# target/fuzz-logs).
#
#   fuzz/run.sh 300                  # every target, 5 minutes each
#   fuzz/run.sh 60 sntp ipmsg        # two targets, a minute each
#
# The corpus is minimized on edges alone (`cargo fuzz cmin -- -use_counters=0`): every edge
# any input reached is kept, in a few hundred small files instead of thousands. A crash is
# fixed in the decoder and its input kept as seeds/TARGET/crash-WHAT, which is never
# minimized away.
set -eu
cd "$(dirname "$0")"
secs=${1:-60}
[ $# -gt 0 ] && shift
targets=${*:-$(cargo +nightly fuzz list)}
logs=${LOGS:-target/fuzz-logs}
mkdir -p "$logs"
nice -n 10 cargo +nightly fuzz build
printf '%-15s %6s %10s %7s %5s %6s %15s %14s %7s\n' \
    target seconds execs exec/s cov ft corpus kept crashes
for t in $targets; do
    mkdir -p "corpus/$t"
    # -timeout: a single input that takes 10 s is a hang; -rss_limit_mb: one that needs
    # 2 GiB is unbounded memory. Both count as crashes.
    nice -n 19 cargo +nightly fuzz run "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
        -print_final_stats=1 >"$logs/$t.log" 2>&1 || true
    nice -n 19 cargo +nightly fuzz cmin "$t" "corpus/$t" -- -use_counters=0 \
        >"$logs/$t.cmin.log" 2>&1 || true
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$t.log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$logs/$t.log")
    last=$(grep -E '^#[0-9]+' "$logs/$t.log" | tail -n 1)
    cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    corp=$(echo "$last" | sed -n 's/.* corp: \([^ ]*\).*/\1/p')
    kept="$(ls "corpus/$t" | wc -l)/$(du -sb "corpus/$t" | cut -f1)b"
    crashes=$(ls "artifacts/$t" 2>/dev/null | wc -l)
    printf '%-15s %6s %10s %7s %5s %6s %15s %14s %7s\n' "$t" "$secs" "${execs:-?}" \
        "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$kept" "$crashes"
done
