#!/usr/bin/python3
"""The figures of the HTTP comparison (bench/run_http_bench.sh: wrk against samples/http_server
and against bench/compare/http/epoll_http_server).

  http_figures.py collect RUNS_DIR ENV.txt > http.json
      Parses each run's wrk output (NNN-LABEL.wrk: Requests/sec, the latency distribution,
      socket errors, non-2xx/3xx responses) and its facts (NNN-LABEL.meta: server, server CPU
      ticks) into one document: every run, medians per server, paired weft/epoll ratios.
  http_figures.py report http.json OUT.dat OUT.targets.gp > table.md
      A Markdown table and the verdict (issue 5: http_server >= 90 % of the baseline's req/s),
      the gnuplot data file and panel settings of plot_http.gp.

Standard library only. Exit status 1 if a run reported errors or a figure is missing.
"""
import math
import os
import re
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pair_figures as pf  # noqa: E402

EPOLL, WEFT = 0x55A868, 0x4C72B0
NAMES = {"epoll": "epoll (hand-written)", "weft": "weft http_server"}
PERCENTILES = ("50", "75", "90", "99")
LATENCY = tuple(f"p{p}_us" for p in PERCENTILES)
METRICS = ("rps", "mean_us", "max_us") + LATENCY + ("server_cpu_us_per_request", "server_cpu_s", "requests")
TARGET = 0.9
UNIT_US = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6}


def duration_us(text):
    """wrk's "1.23ms" in microseconds (None if it is not a duration)."""
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text)
    return float(m.group(1)) * UNIT_US[m.group(2)] if m else None


def parse_wrk(text, meta):
    """One record from wrk --latency output; errors counts socket errors, non-2xx/3xx answers, a
    failed wrk and output without a Requests/sec line."""
    rec = {"errors": 0}
    m = re.search(r"^Requests/sec:\s+([0-9.]+)", text, re.M)
    rec["rps"] = float(m.group(1)) if m else None
    m = re.search(r"^\s*(\d+) requests in ([0-9.]+\w+),", text, re.M)
    if m:
        rec["requests"] = int(m.group(1))
        rec["measured_s"] = duration_us(m.group(2)) / 1e6
    m = re.search(r"^\s*Latency\s+(\S+)\s+(\S+)\s+(\S+)", text, re.M)
    if m:
        rec["mean_us"], rec["max_us"] = duration_us(m.group(1)), duration_us(m.group(3))
    for p in PERCENTILES:
        m = re.search(rf"^\s*{p}%\s+(\S+)", text, re.M)
        rec[f"p{p}_us"] = duration_us(m.group(1)) if m else None
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    rec["socket_errors"] = sum(int(g) for g in m.groups()) if m else 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    rec["non_2xx"] = int(m.group(1)) if m else 0
    rec["errors"] = rec["socket_errors"] + rec["non_2xx"] + (1 if meta.get("client_status", 0) != 0 else 0)
    if rec["rps"] is None:
        rec["errors"] += 1
    return [rec]


def collect(runs_dir, env_path):
    pf.collect_pairs(runs_dir, env_path, ".wrk", parse_wrk, ("server", "connections"), METRICS,
                     ("epoll", "weft", ("rps", "p99_us", "server_cpu_us_per_request")), lambda r: r.get("requests"))


def report(src, dat_path, gp_path):
    doc = pf.load(src)
    env = doc.get("env", {})
    summ = {s["server"]: s for s in doc["summary"]}
    pairs = doc.get("paired_ratios", [])
    pr = pairs[0] if pairs else {}
    problems = [f'{s["server"]}: {s["errors"]} errors (socket errors, non-2xx/3xx or a failed wrk)'
                for s in doc["summary"] if s.get("errors")]
    for srv in ("epoll", "weft"):
        if srv not in summ:
            problems.append(f"missing: {srv}")
    if env.get("answers", "").startswith("DIFFER"):
        problems.append("the two servers answer GET / with different bytes (env.txt, answers): they do not do the same work")
    conns = next((s["connections"] for s in doc["summary"]), "?")
    reps = max((s["runs"] for s in doc["summary"]), default=0)

    out = [pf.machine_line(env, f"Medians of {reps} run(s) per server"),
           f'Servers: {env.get("servers", "?")}. Client: {env.get("client", "?")}. wrk and the server share the '
           'cores: req/s measures both together; server CPU per request is the server alone.\n',
           "| server | req/s (min–max) | p50 | p75 | p90 | p99 | server CPU per request | errors |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    cells = [(k, 0, " µs") for k in LATENCY] + [("server_cpu_us_per_request", 2, " µs"), ("errors", 0, "")]
    for srv in ("epoll", "weft"):
        out.append(pf.server_row([NAMES[srv]], summ.get(srv), cells))
    e, w = summ.get("epoll", {}), summ.get("weft", {})
    r = {k: pf.ratio(w.get(k), e.get(k)) for k in ("rps",) + LATENCY + ("server_cpu_us_per_request",)}
    out.append(f'| weft / epoll (of the medians) | {pf.fmt_x(r["rps"])} | '
               + " | ".join(pf.fmt_x(r[k]) for k in LATENCY) + f' | {pf.fmt_x(r["server_cpu_us_per_request"])} | |')
    if pr:
        out.append(f'| **weft / epoll, paired ({pr["pairs"]} pairs)** | **{pf.fmt_x(pr.get("rps_ratio"))}** | | | '
                   f'| **{pf.fmt_x(pr.get("p99_us_ratio"))}** | **{pf.fmt_x(pr.get("server_cpu_us_per_request_ratio"))}** | |')
    out.append("")

    rps_x = pr.get("rps_ratio", r["rps"])
    cpu_x = pr.get("server_cpu_us_per_request_ratio", r["server_cpu_us_per_request"])
    ok = None if rps_x is None else rps_x >= TARGET
    verdicts = [(f"wrk -t1 -c{conns}: http_server / epoll baseline req/s = {pf.fmt_x(rps_x)} "
                 f"(target >= {TARGET:.2f}x); server CPU per request {pf.fmt_x(cpu_x)}", ok,
                 f"http_server / epoll req/s = {pf.fmt_x(rps_x)} (>= {TARGET:.2f}x);|server CPU per request {pf.fmt_x(cpu_x)}")]
    out.append("**Target** (issue 5: http_server at least 90 % of the hand-written epoll server's requests/s; "
               "the paired ratio, the median of the ratios of back-to-back runs, decides):\n")
    pf.print_report(out, verdicts, problems)

    # ---- gnuplot data: req/s, latency percentiles, server CPU per request --------------------
    colours = {"epoll": EPOLL, "weft": WEFT}
    short = {"epoll": "epoll", "weft": "weft"}
    blocks = [[(f"{short[s]}|baseline" if s == "epoll" else f"{short[s]}|http_server", summ.get(s, {}).get("rps"),
                colours[s], e["rps"] * TARGET if s == "weft" and e.get("rps") else None) for s in ("epoll", "weft")],
              [(f"{short[s]}|p{p}", summ.get(s, {}).get(f"p{p}_us"), colours[s], None)
               for p in PERCENTILES for s in ("epoll", "weft")],
              [(short[s], summ.get(s, {}).get("server_cpu_us_per_request"), colours[s], None) for s in ("epoll", "weft")]]
    pf.write_dat(dat_path, src, blocks)
    lat = [v for _, v, _, _ in blocks[1] if v]
    pf.write_targets(gp_path, "plot_http.gp", {
        "conns": conns if isinstance(conns, int) else 0, "reps": reps,
        "lat_ymin": 10 ** math.floor(math.log10(min(lat))) if lat else 1,
        "lat_ymax": max(lat) * 3 if lat else 1e6,
        "target_ratio": TARGET,
        "machine": env.get("nproc", "?") + " CPUs, " + env.get("date", "")}, verdicts)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(pf.cli_main(__doc__, collect, report))
