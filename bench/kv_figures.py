#!/usr/bin/python3
"""The figures of the Redis-protocol comparison (bench/run_kv_bench.sh: redis-benchmark against
samples/kv_server and against Debian's redis-server).

  kv_figures.py collect RUNS_DIR ENV.txt > kv.json
      Parses each run's redis-benchmark --csv output (NNN-LABEL-PDEPTH.csv: one line per test,
      requests/s and latency in ms) and its facts (.meta: server, pipeline depth, server CPU
      ticks, the client's exit status) into one document: every test of every run, medians per
      (server, depth, test), paired kv_server/redis-server ratios.
  kv_figures.py report kv.json OUT.dat OUT.targets.gp > table.md
      A Markdown table and the verdicts (issue 5: kv_server >= redis-server's requests/s for
      each test and depth), the gnuplot data file and panel settings of plot_kv.gp.

Standard library only. Exit status 1 if a run reported errors or a figure is missing.
"""
import csv
import io
import math
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pair_figures as pf  # noqa: E402

REDIS, WEFT = 0xC44E52, 0x4C72B0
NAMES = {"redis": "redis-server", "weft": "weft kv_server"}
TESTS = ("SET", "GET")
CSV_FIELDS = {"rps": "rps", "avg_latency_ms": "mean_ms", "p50_latency_ms": "p50_ms", "p95_latency_ms": "p95_ms",
              "p99_latency_ms": "p99_ms", "max_latency_ms": "max_ms"}
METRICS = ("rps", "mean_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms", "server_cpu_us_per_request", "server_cpu_s")
TARGET = 1.0


def parse_csv(text, meta):
    """One record per test line of redis-benchmark --csv. A failed client, anything on its
    stderr, or a test of TESTS missing counts as an error (on the run's first record)."""
    recs = []
    for row in csv.DictReader(io.StringIO(text)):
        rec = {"test": row.get("test", "?"), "errors": 0}
        for src, dst in CSV_FIELDS.items():
            try:
                rec[dst] = float(row[src])
            except (KeyError, TypeError, ValueError):
                rec[dst] = None
        recs.append(rec)
    missing = [t for t in TESTS if t not in {r["test"] for r in recs}]
    bad = int(meta.get("client_status", 0) != 0) + int(meta.get("client_stderr_bytes", 0) > 0) + len(missing)
    for t in missing:
        recs.append({"test": t, "rps": None, "errors": 0})
    recs[0]["errors"] += bad
    return recs


def collect(runs_dir, env_path):
    # The CPU time covers the whole redis-benchmark run: every test of it.
    pf.collect_pairs(runs_dir, env_path, ".csv", parse_csv, ("server", "pipeline", "test"), METRICS,
                     ("redis", "weft", ("rps", "p99_ms", "server_cpu_us_per_request")),
                     lambda r: r.get("requests_per_test", 0) * len(TESTS))


def report(src, dat_path, gp_path):
    doc = pf.load(src)
    env = doc.get("env", {})
    summ = {(s["server"], s["pipeline"], s["test"]): s for s in doc["summary"]}
    pairs = {(p["pipeline"], p["test"]): p for p in doc.get("paired_ratios", [])}
    depths = sorted({s["pipeline"] for s in doc["summary"]}) or [1, 16]
    problems = [f'{NAMES.get(s["server"], s["server"])} -P {s["pipeline"]} {s["test"]}: {s["errors"]} errors '
                "(redis-benchmark failed, wrote to stderr, or left out a test)" for s in doc["summary"] if s.get("errors")]
    reps = max((s["runs"] for s in doc["summary"]), default=0)
    clients = next((r.get("clients") for r in doc.get("runs", [])), "?")
    n = next((r.get("requests_per_test") for r in doc.get("runs", [])), "?")

    out = [pf.machine_line(env, f"Medians of {reps} run(s) per line"),
           f'Servers: {env.get("servers", "?")}. Client: {env.get("client", "?")}. redis-benchmark and the server '
           "share the cores: req/s measures both together; server CPU per request (over SET and GET together) "
           "is the server alone.\n",
           "| -P | test | server | req/s (min–max) | p50 | p99 | server CPU per request |",
           "|---:|---|---|---:|---:|---:|---:|"]
    verdicts = []
    cells = [("p50_ms", 3, " ms"), ("p99_ms", 3, " ms"), ("server_cpu_us_per_request", 2, " µs")]
    for d in depths:
        for t in TESTS:
            vals = {}
            for srv in ("redis", "weft"):
                s = summ.get((srv, d, t))
                vals[srv] = s or {}
                if s is None:
                    problems.append(f"missing: {srv} -P {d} {t}")
                out.append(pf.server_row([str(d), t, NAMES[srv]], s, cells))
            r, w = vals["redis"], vals["weft"]
            x = {k: pf.ratio(w.get(k), r.get(k)) for k in ("rps", "p50_ms", "p99_ms", "server_cpu_us_per_request")}
            out.append(f'| {d} | {t} | kv_server / redis-server (of the medians) | {pf.fmt_x(x["rps"])} '
                       f'| {pf.fmt_x(x["p50_ms"])} | {pf.fmt_x(x["p99_ms"])} | {pf.fmt_x(x["server_cpu_us_per_request"])} |')
            p = pairs.get((d, t), {})
            if p:
                out.append(f'| {d} | {t} | **kv_server / redis-server, paired ({p["pairs"]} pairs)** '
                           f'| **{pf.fmt_x(p.get("rps_ratio"))}** | | **{pf.fmt_x(p.get("p99_ms_ratio"))}** '
                           f'| **{pf.fmt_x(p.get("server_cpu_us_per_request_ratio"))}** |')
            rps_x = p.get("rps_ratio", x["rps"])
            ok = None if rps_x is None else rps_x >= TARGET
            verdicts.append((f"-P {d}, {t}: kv_server / redis-server req/s = {pf.fmt_x(rps_x)} "
                             f"(target >= {TARGET:.2f}x)", ok,
                             f"-P {d} {t}: kv_server / redis-server req/s = {pf.fmt_x(rps_x)} (>= {TARGET:.2f}x)"))
    out.append("")
    out.append(f"**Target** (issue 5: `redis-benchmark -t set,get -c {clients} -n {n}` at each pipeline depth, "
               "kv_server with 2 workers at least as fast as redis-server; the paired ratio, the median of the "
               "ratios of back-to-back runs, decides):\n")
    pf.print_report(out, verdicts, problems)

    # ---- gnuplot data: req/s at the first two depths, p99, server CPU per request -------------
    colours = {"redis": REDIS, "weft": WEFT}
    short = {"redis": "redis", "weft": "kv_server"}

    def val(srv, d, t, k):
        return summ.get((srv, d, t), {}).get(k)

    blocks = []
    for d in (depths + depths)[:2]:
        blocks.append([(f"{short[srv]}|{t}", val(srv, d, t, "rps"), colours[srv],
                        val("redis", d, t, "rps") if srv == "weft" and val("redis", d, t, "rps") else None)
                       for t in TESTS for srv in ("redis", "weft")])
    blocks.append([(f"{short[srv]}|{t} -P {d}", val(srv, d, t, "p99_ms"), colours[srv], None)
                   for d in depths[:2] for t in TESTS for srv in ("redis", "weft")])
    blocks.append([(f"{short[srv]}|-P {d}", val(srv, d, TESTS[0], "server_cpu_us_per_request"), colours[srv], None)
                   for d in depths[:2] for srv in ("redis", "weft")])
    pf.write_dat(dat_path, src, blocks)
    lat = [v for _, v, _, _ in blocks[2] if v]
    pf.write_targets(gp_path, "plot_kv.gp", {
        "depth_a": depths[0], "depth_b": depths[1] if len(depths) > 1 else depths[0], "reps": reps,
        "clients": clients if isinstance(clients, int) else 0, "requests": n if isinstance(n, int) else 0,
        "lat_ymin": 10 ** math.floor(math.log10(min(lat))) if lat else 0.01,
        "lat_ymax": max(lat) * 3 if lat else 100,
        "machine": env.get("nproc", "?") + " CPUs, " + env.get("date", "")}, verdicts)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(pf.cli_main(__doc__, collect, report))
