#!/usr/bin/python3
"""The figures of the echo comparison (bench/run_echo_bench.sh, bench/compare/echo/).

  echo_figures.py collect RUNS_DIR ENV.txt > echo.json
      Gathers the JSON files echo_client wrote (one per run) and the environment notes into one
      document: every run as measured, plus medians per (mode, server, connections).
  echo_figures.py report echo.json OUT.dat OUT_targets.gp > table.md
      A Markdown table (req/s, p50, p99, p99.9, server CPU per request, setups/s, RSS per idle
      connection, the weft/epoll ratios and the budget verdicts of docs/design.md), a gnuplot data
      file (one block per panel of plot_echo.gp) and the panel settings.

Standard library only. Exit status 1 if a run reported errors or a figure is missing.
"""
import glob
import json
import math
import os
import statistics
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pair_figures import cli_main, fmt, fmt_x, num, ratio, read_env  # noqa: E402

EPOLL, WEFT, WEFT_SMALL = 0x55A868, 0x4C72B0, 0x9DB3D6
NAMES = {"epoll": "epoll (hand-written)", "weft": "weft", "weft-buf256": "weft, 256 B buffer"}
METRICS = ("rps", "p50_us", "p99_us", "p999_us", "max_us", "mean_us", "server_cpu_us_per_request",
           "server_cpu_s", "client_cpu_s", "requests", "errors")
PAGE_KIB = 4.0
# The idle budget counts one stack page per parked fiber (its control block lives in that page).
# A weft socket also keeps a descriptor record (io_desc, about 100 bytes) where the baseline keeps
# its own, smaller, connection record: this much per connection is allowed on top of the page.
IO_RECORD_ALLOWANCE_KIB = 0.25


def collect(runs_dir, env_path):
    runs = []
    for path in sorted(glob.glob(os.path.join(runs_dir, "*.json"))):
        with open(path) as f:
            run = json.load(f)
        run["file"] = os.path.basename(path)
        runs.append(run)
    env = read_env(env_path)
    groups = {}
    for r in runs:
        groups.setdefault((r["mode"], r.get("server", ""), r["connections"]), []).append(r)
    summary = []
    for (mode, server, conns), rs in sorted(groups.items()):
        s = {"mode": mode, "server": server, "connections": conns, "runs": len(rs),
             "errors": sum(r.get("errors", 0) for r in rs)}
        if mode == "idle":
            for k in ("rss_before_kib", "rss_after_kib", "rss_kib_per_conn"):
                s[k] = statistics.median(r[k] for r in rs)
        else:
            for k in METRICS:
                vals = [r[k] for r in rs if k in r]
                if vals and k != "errors":
                    s[k] = statistics.median(vals)
            rps = [r["rps"] for r in rs]
            s["rps_min"], s["rps_max"] = min(rps), max(rps)
        summary.append(s)
    # The script alternates the servers, so the k-th epoll run and the k-th weft run of a
    # configuration ran back to back: the median of their ratios is less exposed to load that
    # drifts over the whole measurement than the ratio of the two medians.
    paired = []
    for mode in ("echo", "setup"):
        for conns in sorted({c for (m, _, c) in groups if m == mode}):
            e, w = groups.get((mode, "epoll", conns), []), groups.get((mode, "weft", conns), [])
            n = min(len(e), len(w))
            if n == 0:
                continue
            p = {"mode": mode, "connections": conns, "pairs": n}
            for k in ("rps", "p99_us", "server_cpu_us_per_request"):
                rs = [b[k] / a[k] for a, b in zip(e, w) if a.get(k) and k in b]
                if rs:
                    p[k + "_ratio"] = statistics.median(rs)
            paired.append(p)
    json.dump({"env": env, "summary": summary, "paired_ratios": paired, "runs": runs}, sys.stdout, indent=1)
    sys.stdout.write("\n")


def report(src, dat_path, gp_path):
    with open(src) as f:
        doc = json.load(f)
    env = doc.get("env", {})
    summ = {(s["mode"], s["server"], s["connections"]): s for s in doc["summary"]}
    problems = []

    def get(mode, server, conns, key):
        s = summ.get((mode, server, conns))
        if s is None or key not in s:
            problems.append(f"missing: {mode} {server} {conns} {key}")
            return None
        return float(s[key])

    def by_conns(mode, server):
        return sorted(c for (m, s, c) in summ if m == mode and s == server)

    for s in doc["summary"]:
        if s.get("errors"):
            problems.append(f'{s["mode"]} {s["server"]} {s["connections"]}: {s["errors"]} errors')

    echo_conns = sorted(set(by_conns("echo", "epoll")) | set(by_conns("echo", "weft"))) or [100, 1000]
    setup_conns = sorted(set(by_conns("setup", "epoll")) | set(by_conns("setup", "weft")))
    idle_rows = [(s, c) for (m, s, c) in sorted(summ) if m == "idle"]

    paired = {(p["mode"], p["connections"]): p for p in doc.get("paired_ratios", [])}

    def paired_row(mode, c):
        # The median of back-to-back ratios (see collect); it decides the verdicts.
        p = paired.get((mode, c), {})
        if p:
            out.append(f'| {c:,} | **weft / epoll, paired ({p["pairs"]} pairs)** | **{fmt_x(p.get("rps_ratio"))}** '
                       f'| | **{fmt_x(p.get("p99_us_ratio"))}** | | **{fmt_x(p.get("server_cpu_us_per_request_ratio"))}** |')
        return p

    out = []
    reps = max((s["runs"] for s in doc["summary"] if s["mode"] == "echo"), default=0)
    out.append(f'Medians of {reps} run(s) per line; {env.get("nproc", "?")} CPUs ({env.get("cpu", "?")}), '
               f'{env.get("date", "")}; commit {env.get("commit", "?")}. Load average before / after: '
               f'{env.get("load before", "?")} / {env.get("load after", "?")}.\n')
    out.append(f'Servers: {env.get("servers", "?")}. Client: {env.get("client", "?")}. Client and server '
               'share the cores: req/s measures both together; server CPU per request is the server alone.\n')

    # ---- echo --------------------------------------------------------------------------------------
    out.append("| connections | server | req/s (min–max) | p50 | p99 | p99.9 | server CPU per request |")
    out.append("|---:|---|---:|---:|---:|---:|---:|")
    verdicts = []
    for c in echo_conns:
        vals = {}
        for srv in ("epoll", "weft"):
            s = summ.get(("echo", srv, c))
            if s is None:
                problems.append(f"missing: echo {srv} {c}")
                out.append(f"| {c:,} | {NAMES[srv]} | n/a | n/a | n/a | n/a | n/a |")
                vals[srv] = {}
                continue
            vals[srv] = s
            out.append(f'| {c:,} | {NAMES[srv]} | {fmt(s["rps"], 0)} ({fmt(s["rps_min"], 0)}–{fmt(s["rps_max"], 0)}) '
                       f'| {fmt(s["p50_us"], 1, " µs")} | {fmt(s["p99_us"], 1, " µs")} | {fmt(s["p999_us"], 1, " µs")} '
                       f'| {fmt(s.get("server_cpu_us_per_request"), 2, " µs")} |')
        e, w = vals["epoll"], vals["weft"]
        r = {k: ratio(w.get(k), e.get(k)) for k in ("rps", "p50_us", "p99_us", "p999_us", "server_cpu_us_per_request")}
        out.append(f'| {c:,} | weft / epoll (of the medians) | {fmt_x(r["rps"])} | {fmt_x(r["p50_us"])} | {fmt_x(r["p99_us"])} '
                   f'| {fmt_x(r["p999_us"])} | {fmt_x(r["server_cpu_us_per_request"])} |')
        pr = paired_row("echo", c)
        rps_x = pr.get("rps_ratio", r["rps"])
        cpu_x = pr.get("server_cpu_us_per_request_ratio", r["server_cpu_us_per_request"])
        ok = None if rps_x is None else rps_x >= 0.9
        verdicts.append((f"echo, {c:,} connections: weft/epoll req/s = {fmt_x(rps_x)} (target >= 0.90x); "
                         f"server CPU per request {fmt_x(cpu_x)}", ok,
                         f"echo, {c} conns: weft/epoll req/s = {fmt_x(rps_x)} (>= 0.90x); server CPU/req {fmt_x(cpu_x)}"))
        p99_x = pr.get("p99_us_ratio", r["p99_us"])
        ok = None if p99_x is None else p99_x <= 2.0
        verdicts.append((f"echo, {c:,} connections: weft/epoll p99 = {fmt_x(p99_x)} (target <= 2.0x)", ok,
                         f"echo, {c} conns: weft/epoll p99 = {fmt_x(p99_x)} (<= 2.0x)"))
    out.append("")

    # ---- setup -------------------------------------------------------------------------------------
    if setup_conns:
        out.append("| concurrent loops | server | connect + echo + close per s (min–max) | p50 | p99 | p99.9 | server CPU per setup |")
        out.append("|---:|---|---:|---:|---:|---:|---:|")
        for c in setup_conns:
            vals = {}
            for srv in ("epoll", "weft"):
                s = summ.get(("setup", srv, c))
                vals[srv] = s or {}
                if s is None:
                    problems.append(f"missing: setup {srv} {c}")
                    out.append(f"| {c:,} | {NAMES[srv]} | n/a | n/a | n/a | n/a | n/a |")
                    continue
                out.append(f'| {c:,} | {NAMES[srv]} | {fmt(s["rps"], 0)} ({fmt(s["rps_min"], 0)}–{fmt(s["rps_max"], 0)}) '
                           f'| {fmt(s["p50_us"], 1, " µs")} | {fmt(s["p99_us"], 1, " µs")} | {fmt(s["p999_us"], 1, " µs")} '
                           f'| {fmt(s.get("server_cpu_us_per_request"), 2, " µs")} |')
            e, w = vals["epoll"], vals["weft"]
            r = {k: ratio(w.get(k), e.get(k)) for k in ("rps", "p50_us", "p99_us", "p999_us", "server_cpu_us_per_request")}
            out.append(f'| {c:,} | weft / epoll (of the medians) | {fmt_x(r["rps"])} | {fmt_x(r["p50_us"])} | {fmt_x(r["p99_us"])} '
                       f'| {fmt_x(r["p999_us"])} | {fmt_x(r["server_cpu_us_per_request"])} |')
            paired_row("setup", c)
        out.append("")

    # ---- idle --------------------------------------------------------------------------------------
    idle = {}
    if idle_rows:
        out.append("| server | idle connections | server VmRSS before | after | per connection | pages (4 KiB) |")
        out.append("|---|---:|---:|---:|---:|---:|")
        for srv, c in idle_rows:
            s = summ[("idle", srv, c)]
            idle[srv] = s["rss_kib_per_conn"]
            out.append(f'| {NAMES.get(srv, srv)} | {c:,} | {fmt(s["rss_before_kib"], 0, " KiB")} | {fmt(s["rss_after_kib"], 0, " KiB")} '
                       f'| {fmt(s["rss_kib_per_conn"], 2, " KiB")} | {fmt(s["rss_kib_per_conn"] / PAGE_KIB, 2)} |')
        out.append("")
        small, base = idle.get("weft-buf256"), idle.get("epoll")
        if small is not None and base is not None:
            extra = small - base
            verdicts.append((f"idle parked fiber (256 B buffer): {extra:.2f} KiB per connection more than epoll "
                             f"(target <= one 4 KiB page + {IO_RECORD_ALLOWANCE_KIB} KiB for the socket record)",
                             extra <= PAGE_KIB + IO_RECORD_ALLOWANCE_KIB,
                             f"idle fiber (256 B buffer): +{extra:.2f} KiB per conn over epoll "
                             f"(<= {PAGE_KIB + IO_RECORD_ALLOWANCE_KIB:.2f})"))
        else:
            problems.append("missing: idle weft-buf256 or epoll")

    out.append("**Budget** (docs/design.md: echo within 10 % of the hand-written epoll server; an idle parked fiber "
               "costs one touched stack page plus its control block, which lives in that page). Req/s decides the "
               "echo verdict (the paired ratio: the median of the ratios of back-to-back runs); server CPU per request is shown beside it because on this box the client's share of "
               "the cores dilutes a server's cost in req/s:\n")
    for text, ok, _ in verdicts:
        out.append(f"- {text}: {'n/a' if ok is None else ('met' if ok else '**MISSED**')}")
    if problems:
        out.append("\nProblems: " + "; ".join(problems))
    print("\n".join(out))

    # ---- gnuplot data: one block per panel; label value colour target --------------------------
    def echo_val(srv, c, key):
        s = summ.get(("echo", srv, c))
        return None if s is None or key not in s else float(s[key])

    blocks = []
    blk = []
    for c in echo_conns:
        e = echo_val("epoll", c, "rps")
        blk.append((f"epoll|{c} conns", e, EPOLL, None))
        blk.append((f"weft|{c} conns", echo_val("weft", c, "rps"), WEFT, None if e is None else 0.9 * e))
    blocks.append(blk)
    for c in echo_conns[:2]:
        blk = []
        for key, name in (("p50_us", "p50"), ("p99_us", "p99"), ("p999_us", "p99.9")):
            blk.append((f"epoll|{name}", echo_val("epoll", c, key), EPOLL, None))
            blk.append((f"weft|{name}", echo_val("weft", c, key), WEFT, None))
        blocks.append(blk)
    while len(blocks) < 3:
        blocks.append([("n/a", None, EPOLL, None)])
    blk = []
    for c in echo_conns:
        blk.append((f"epoll|{c} conns", echo_val("epoll", c, "server_cpu_us_per_request"), EPOLL, None))
        blk.append((f"weft|{c} conns", echo_val("weft", c, "server_cpu_us_per_request"), WEFT, None))
    blocks.append(blk)
    blk = []
    for c in setup_conns or [0]:
        for srv, col in (("epoll", EPOLL), ("weft", WEFT)):
            s = summ.get(("setup", srv, c))
            blk.append((f"{srv}|{c} loops", None if s is None else s["rps"], col, None))
    blocks.append(blk)
    blk = []
    for srv, col in (("epoll", EPOLL), ("weft", WEFT), ("weft-buf256", WEFT_SMALL)):
        v = idle.get(srv)
        tgt = PAGE_KIB + IO_RECORD_ALLOWANCE_KIB + idle["epoll"] if srv == "weft-buf256" and "epoll" in idle else None
        blk.append((NAMES[srv].replace(" (hand-written)", "").replace(", ", "|"), v, col, tgt))
    blocks.append(blk)
    with open(dat_path, "w") as f:
        f.write(f"# medians from {src}; label value colour target (NaN: none)\n")
        for i, b in enumerate(blocks):
            if i:
                f.write("\n\n")
            for label, v, colour, tgt in b:
                f.write(f'"{label}" {num(v)} {colour} {num(tgt)}\n')
    with open(gp_path, "w") as f:
        f.write("# panel settings for plot_echo.gp (generated by echo_figures.py)\n")
        f.write(f"conns_a = {echo_conns[0]}\n")
        f.write(f"conns_b = {echo_conns[1] if len(echo_conns) > 1 else 0}\n")
        f.write(f"setup_loops = {setup_conns[0] if setup_conns else 0}\n")
        f.write(f"idle_conns = {idle_rows[0][1] if idle_rows else 0}\n")
        f.write(f"reps = {reps}\n")
        lat = [echo_val(srv, c, k) for srv in ("epoll", "weft") for c in echo_conns for k in ("p50_us", "p999_us")]
        lat = [v for v in lat if v]
        f.write(f"lat_ymin = {10 ** math.floor(math.log10(min(lat))) if lat else 1}\n")
        f.write(f"lat_ymax = {max(lat) * 3 if lat else 1e6}\n")
        f.write(f"idle_allowance = {IO_RECORD_ALLOWANCE_KIB}\n")
        f.write(f'machine = {json.dumps(env.get("nproc", "?") + " CPUs, " + env.get("date", ""))}\n')
        for i, (_, ok, text) in enumerate(verdicts):
            word = "n/a" if ok is None else ("met" if ok else "MISSED")
            f.write(f"verdict{i} = {json.dumps(f'{word}: {text}')}\n")
        f.write(f"verdicts = {len(verdicts)}\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(cli_main(__doc__, collect, report))
