"""Drives every echo server with `taojie bench --json` and prints a markdown report.

Each (peer, scenario) run gets a fresh server on 127.0.0.1 port 0, started here and stopped by
its PID. Every figure is set against the C epoll reference measured in the same invocation:
plain peers against `c-epoll`, upper-casing peers (the seed's socketserver, taojie --upper)
against `c-epoll --upper` driven with the same `--upper` bench, so each ratio compares servers
doing the same work.

Usage: bash bench/run.sh [--seconds S] [--repeat R] [--peers a,b] [--scenarios x,y] [--no-build]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import servers
from servers import log

# name -> (conns, depth, size): 64-byte messages unless said
SCENARIOS = {
    "1x1": (1, 1, 64),
    "50x1": (50, 1, 64),
    "50x16": (50, 16, 64),
    "4x4-16k": (4, 4, 16384),
}
SCENARIO_TITLES = {
    "1x1": "1 connection, depth 1, 64 B (latency)",
    "50x1": "50 connections, depth 1, 64 B",
    "50x16": "50 connections, depth 16, 64 B",
    "4x4-16k": "4 connections, depth 4, 16 KiB",
}
REFERENCE = {False: "c-epoll", True: "c-epoll --upper"}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seconds", type=float, default=5.0, help="length of each bench run")
    p.add_argument("--repeat", type=int, default=1, help="runs per (peer, scenario); median kept")
    p.add_argument("--peers", help="comma-separated subset of: "
                   + ", ".join(servers.peer_commands())
                   + " (default: all but " + ", ".join(sorted(servers.OPT_IN)) + ")")
    p.add_argument("--scenarios", help="comma-separated subset of: " + ", ".join(SCENARIOS))
    p.add_argument("--no-build", action="store_true", help="use the binaries already built")
    p.add_argument("--taojie", default=servers.TAOJIE, help="taojie binary (server and bench)")
    p.add_argument("--json-out", help="also write every run's figures here as JSON")
    p.add_argument("--wait-quiet", type=float, default=0, metavar="S",
                   help="before each run, wait up to S seconds for the machine to be < 25%% busy")
    a = p.parse_args()
    if not 0.5 <= a.seconds <= 120 or not 1 <= a.repeat <= 10 or not 0 <= a.wait_quiet <= 600:
        p.error("--seconds must be in 0.5..120, --repeat in 1..10, --wait-quiet in 0..600")
    return a


def pick(spec, known, what):
    if not spec:
        return [k for k in known if k not in servers.OPT_IN]
    names = [s.strip() for s in spec.split(",") if s.strip()]
    for n in names:
        if n not in known:
            sys.exit(f"run.py: unknown {what} {n!r}; known: {', '.join(known)}")
    return names


def wait_quiet(limit):
    """Waits up to `limit` seconds for half a second in which the machine is < 25% busy (other
    jobs sharing the two cores skew every figure); returns how busy the last window was."""
    deadline = time.monotonic() + limit
    while True:
        b0, t0 = servers.machine_busy_seconds(), time.monotonic()
        time.sleep(0.5)
        busy = 100 * (servers.machine_busy_seconds() - b0) / (time.monotonic() - t0)
        if busy < 25 or time.monotonic() >= deadline:
            return busy


def one_run(args, name, argv, upper, scenario):
    """Starts the peer, benches it once, stops it; returns a dict of figures."""
    conns, depth, size = SCENARIOS[scenario]
    row = {"peer": name, "scenario": scenario, "upper": upper}
    try:
        server = servers.Server(name, argv)
    except RuntimeError as e:
        return {**row, "failed": str(e)}
    if args.wait_quiet:
        wait_quiet(args.wait_quiet)
    cmd = [args.taojie, "bench", server.addr_str, "--conns", str(conns), "--depth", str(depth),
           "--size", str(size), "--seconds", f"{args.seconds:g}", "--json"]
    if upper:
        cmd.append("--upper")
    # Generous but bounded: backlog-5 peers can spend seconds on SYN retries while connecting.
    limit = 2 * args.seconds + 60
    try:
        kern0 = servers.tcp_counters()
        cpu0, busy0, t0 = server.cpu_seconds(), servers.machine_busy_seconds(), time.monotonic()
        try:
            done = subprocess.run(cmd, capture_output=True, timeout=limit)
        except subprocess.TimeoutExpired:
            return {**row, "failed": f"bench did not finish within {limit:.0f} s"}
        server.wait_children_gone()
        wall = time.monotonic() - t0
        cpu1, busy1 = server.cpu_seconds(), servers.machine_busy_seconds()
        row["server_cpu_seconds"] = cpu1 - cpu0
        kern = {k: v - kern0.get(k, 0) for k, v in servers.tcp_counters().items()}
        alive = server.alive()
    finally:
        server.stop()
    out = done.stdout.decode(errors="replace").strip().splitlines()
    err = done.stderr.decode(errors="replace").strip().splitlines()
    if done.returncode != 0 or not out or not out[-1].startswith("{"):
        return {**row, "failed": f"bench exit {done.returncode}: {(err or ['no output'])[-1]}"}
    result = json.loads(out[-1])
    if err:  # the bench's warnings, e.g. why connections failed
        row["bench_stderr"] = err[-1][-200:]
    server_pct = 100 * (cpu1 - cpu0) / wall
    # Everything the machine did in that window besides the bench and the server: noise.
    other_pct = max(0.0, 100 * (busy1 - busy0) / wall - server_pct - result.get("cpu_percent", 0))
    return {**row, **result, "server_cpu_percent": server_pct, "other_cpu_percent": other_pct,
            "server_survived": alive, "kernel": kern}


def median_run(runs):
    ok = [r for r in runs if "failed" not in r]
    if not ok:
        return runs[-1]
    ok.sort(key=lambda r: r["requests_per_sec"])
    best = dict(ok[(len(ok) - 1) // 2])
    rates = [r["requests_per_sec"] for r in ok]
    if len(ok) > 1:
        best["spread_pct"] = 100 * (max(rates) - min(rates)) / 2 / statistics.median(rates)
    best["runs"] = len(ok)
    best["failed_runs"] = len(runs) - len(ok)
    return best


def fmt_int(x):
    return f"{x:,.0f}"


def fmt_us(x):
    return f"{x:,.0f}" if x >= 10 else f"{x:.1f}"


def ratio(r, ref, key):
    if not ref or "failed" in ref or "failed" in r or not ref.get(key):
        return "–"
    return f"{r[key] / ref[key]:.2f}×"


def table(scenario, peers, results):
    lines = [f"### {SCENARIO_TITLES[scenario]}", "",
             "| peer | req/s | MB/s | p50 µs | p99 µs | p99.9 µs | req/s ÷ C | p99 ÷ C "
             "| errors | bench CPU % | server CPU % | other CPU % | server CPU µs/req |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name in peers:
        r = results[(name, scenario)]
        ref = results.get((REFERENCE[r["upper"]], scenario))
        label = name + (" ¹" if r["upper"] else "")
        if "failed" in r:
            lines.append(f"| {label} | failed: {r['failed']} |" + " |" * 12)
            continue
        rps = fmt_int(r["requests_per_sec"])
        if "spread_pct" in r:
            rps += f" ±{r['spread_pct']:.0f}%"
        died = "" if r["server_survived"] else " (server died)"
        if r.get("failed_conns"):
            died += f", {r['failed_conns']} conns failed"
        lines.append(
            f"| {label} | {rps} | {r['mb_per_sec']:.1f} | {fmt_us(r['p50_us'])} "
            f"| {fmt_us(r['p99_us'])} | {fmt_us(r['p999_us'])} | {ratio(r, ref, 'requests_per_sec')} "
            f"| {ratio(r, ref, 'p99_us')} | {r['errors']}{died} | {r['cpu_percent']:.0f} "
            f"| {r['server_cpu_percent']:.0f} | {r['other_cpu_percent']:.0f} "
            f"| {1e6 * r['server_cpu_seconds'] / max(1, r['requests']):.2f} |")
    notes = []
    for name in peers:
        r = results[(name, scenario)]
        k = r.get("kernel") or {}
        if k.get("ListenOverflows") or k.get("SyncookiesSent") or k.get("SyncookiesFailed"):
            notes.append(f"{name}: the kernel counted {k['ListenOverflows']} listen-queue "
                         f"overflows, {k['SyncookiesSent']} SYN cookies sent, "
                         f"{k['SyncookiesFailed']} invalid")
        if r.get("failed_conns") and r.get("bench_stderr"):
            notes.append(f"{name}: bench said: `{r['bench_stderr'].split('WARN', 1)[-1].strip()}`")
        if r.get("max_us", 0) >= 500_000:
            notes.append(f"{name}: slowest answer {r['max_us'] / 1e6:.1f} s; the run took "
                         f"{r['seconds']:.1f} s")
    if notes:
        lines += [""] + [f"- {n}" for n in notes]
    return "\n".join(lines)


def targets(results):
    """The issue's targets for taojie against the C reference, checked on this run's figures."""
    out = ["### Targets (taojie against c-epoll, this run)", ""]

    def get(peer, sc):
        r = results.get((peer, sc))
        return None if r is None or "failed" in r else r

    for sc in ("50x1", "50x16", "4x4-16k"):
        t, c = get("taojie", sc), get("c-epoll", sc)
        if t and c:
            x = t["requests_per_sec"] / c["requests_per_sec"]
            verdict = "met" if x >= 0.9 else "NOT met"
            out.append(f"- {SCENARIO_TITLES[sc]}: req/s {x:.2f}× the reference "
                       f"(target ≥ 0.90×): {verdict}")
    t, c = get("taojie", "1x1"), get("c-epoll", "1x1")
    if t and c:
        x = t["p99_us"] / c["p99_us"]
        verdict = "met" if x <= 1.2 else "NOT met"
        out.append(f"- 1 connection: p99 {fmt_us(t['p99_us'])} µs against {fmt_us(c['p99_us'])} µs, "
                   f"{x:.2f}× (target ≤ 1.20×): {verdict}")
    return "\n".join(out) if len(out) > 2 else ""


def main():
    args = parse_args()
    servers.install_cleanup()
    known = servers.peer_commands(args.taojie)
    peers = pick(args.peers, known, "peer")
    scenarios = pick(args.scenarios, SCENARIOS, "scenario")
    if not args.no_build:
        servers.build(taojie=os.path.abspath(args.taojie) == servers.TAOJIE)
    load = os.getloadavg()
    total = len(peers) * len(scenarios) * args.repeat
    log(f"{total} runs of {args.seconds:g} s; load average before: {load[0]:.2f}")
    runs = {}
    n = 0
    # Repeats go round the whole matrix so slow drifts in machine load spread over every peer.
    for _rep in range(args.repeat):
        for sc in scenarios:
            for name in peers:
                n += 1
                argv, upper = known[name]
                r = one_run(args, name, argv, upper, sc)
                runs.setdefault((name, sc), []).append(r)
                status = r.get("failed") or (f"{r['requests_per_sec']:,.0f} req/s, "
                                             f"p99 {r['p99_us']:.0f} µs, errors {r['errors']}")
                log(f"[{n}/{total}] {name:18} {sc:8} {status}")
    results = {k: median_run(v) for k, v in runs.items()}

    print(f"Machine: {servers.machine_summary()}; load average before the run {load[0]:.2f}.  ")
    print(f"Each run {args.seconds:g} s, {args.repeat} run(s) per cell"
          + (" (median by req/s; ± is half the min–max spread)" if args.repeat > 1 else "")
          + f"; {time.strftime('%Y-%m-%d %H:%M %Z')}.\n")
    for sc in scenarios:
        print(table(sc, peers, results) + "\n")
    if any(r.get("upper") for r in results.values()):
        print("¹ answers in upper case; driven with `taojie bench --upper` and compared with "
              "`c-epoll --upper` driven the same way.\n")
    t = targets(results)
    if t:
        print(t)
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"seconds": args.seconds, "repeat": args.repeat,
                       "runs": [r for v in runs.values() for r in v]}, f, indent=1)
    failed = [r for r in results.values() if "failed" in r]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
