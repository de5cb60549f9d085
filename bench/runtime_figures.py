#!/usr/bin/python3
"""Extracts the figures of runtime_bench's JSON (run with --benchmark_repetitions=N and
--benchmark_report_aggregates_only): medians of every counter, the ratios against the budget of
docs/design.md, a gnuplot data file (one block per chart panel) and a Markdown table.

usage: runtime_figures.py RESULT.json OUT.dat OUT_targets.gp > table.md
Standard library only.
"""
import json
import sys


def load_medians(path):
    with open(path) as f:
        doc = json.load(f)
    med, cv, errors = {}, {}, []
    for b in doc["benchmarks"]:
        if b.get("error_occurred"):
            errors.append(f'{b["name"]}: {b.get("error_message", "")}')
            continue
        name = b.get("run_name", b["name"])
        if b.get("run_type") == "aggregate":
            if b.get("aggregate_name") == "cv":
                cv[name] = b
            if b.get("aggregate_name") != "median":
                continue
        med[name] = b
    return doc, med, cv, errors


def short(run_name):
    # "skynet/weft/workers:2/iterations:1/real_time" -> "skynet/weft/workers:2"
    parts = [p for p in run_name.split("/") if not p.startswith("iterations:") and p != "real_time"]
    return "/".join(parts)


def main():
    src, dat_path, gp_path = sys.argv[1:4]
    doc, med, cvs, errors = load_medians(src)
    fig = {short(k): v for k, v in med.items()}
    fig_cv = {short(k): v for k, v in cvs.items()}

    def c(name, counter):
        b = fig.get(name)
        return None if b is None or counter not in b else float(b[counter])

    def spread(name, counter):
        # coefficient of variation over the repetitions, as " ±N%" (empty without repetitions)
        b = fig_cv.get(name)
        return "" if b is None or counter not in b else f" ±{100 * float(b[counter]):.0f}%"

    bare = c("yield/bare_context", "ns_per_switch")
    # The switch inside a function that returns (see runtime_bench.cpp): the cheaper of resume
    # and resume_with is the floor for any scheduler on Boost.Context.
    in_call = {k: c(f"yield/bare_context_in_call/{k}", "ns_per_switch") for k in ("resume", "resume_with")}
    call_floor = min((v for v in in_call.values() if v is not None), default=None)
    y_boost = c("yield/boost_fiber", "ns_per_switch")
    y_weft = c("yield/weft", "ns_per_switch")
    sj = {k: c(k, "ns_per_fiber") for k in (
        "spawn_join/boost_fiber/batch:100", "spawn_join/boost_fiber/batch:1000",
        "spawn_join/weft/workers:1/batch:100", "spawn_join/weft/workers:1/batch:1000",
        "spawn_join/weft/workers:2/batch:100", "spawn_join/weft/workers:2/batch:1000")}
    sk = {k: c(k, "ms_per_run") for k in (
        "skynet/boost_round_robin", "skynet/boost_work_stealing", "skynet/weft/workers:1",
        "skynet/weft/workers:2")}
    sk_cold = {k: c(k, "cold_ms") for k in ("skynet/weft/workers:1", "skynet/weft/workers:2")}
    idle = {k: c(k, "cpu_pct") for k in ("idle/boost_work_stealing", "idle/weft")}
    rss = c("idle/weft", "rss_kib_per_fiber")

    def fmt(v, nd=1):
        return "n/a" if v is None else f"{v:,.{nd}f}"

    def ratio(a, b):
        return None if a is None or b is None or b == 0 else a / b

    # gnuplot data: one block per panel, "label" value colour; "|" in a label is a line break;
    # blocks are separated by two blank lines (gnuplot's index).
    BARE, BOOST, WEFT = 0x7f7f7f, 0xdd8452, 0x4c72b0
    blocks = [
        [("bare|context::fiber", bare, BARE), ("bare, in a|function call", call_floor, BARE),
         ("Boost.Fiber|round_robin", y_boost, BOOST),
         ("weft|1 worker", y_weft, WEFT)],
        [("Boost.Fiber|batch 100", sj["spawn_join/boost_fiber/batch:100"], BOOST),
         ("Boost.Fiber|batch 1000", sj["spawn_join/boost_fiber/batch:1000"], BOOST),
         ("weft 1w|batch 100", sj["spawn_join/weft/workers:1/batch:100"], WEFT),
         ("weft 1w|batch 1000", sj["spawn_join/weft/workers:1/batch:1000"], WEFT),
         ("weft 2w|batch 100", sj["spawn_join/weft/workers:2/batch:100"], WEFT),
         ("weft 2w|batch 1000", sj["spawn_join/weft/workers:2/batch:1000"], WEFT)],
        [("Boost.Fiber|round_robin|1 thread", sk["skynet/boost_round_robin"], BOOST),
         ("Boost.Fiber|work_stealing|2 threads", sk["skynet/boost_work_stealing"], BOOST),
         ("weft|1 worker", sk["skynet/weft/workers:1"], WEFT),
         ("weft|2 workers", sk["skynet/weft/workers:2"], WEFT)],
        [("Boost.Fiber|work_stealing|2 threads", idle["idle/boost_work_stealing"], BOOST),
         ("weft|2 workers", idle["idle/weft"], WEFT)],
    ]
    with open(dat_path, "w") as f:
        f.write(f"# medians from {src}; label value colour\n")
        for i, blk in enumerate(blocks):
            if i:
                f.write("\n\n")
            for label, v, colour in blk:
                f.write(f'"{label}" {v if v is not None else "NaN"} {colour}\n')
    ws = sk["skynet/boost_work_stealing"]
    with open(gp_path, "w") as f:
        f.write("# budget lines for plot_runtime.gp (generated)\n")
        f.write(f"yield_target = {1.5 * bare if bare else 'NaN'}\n")
        f.write("spawn_target = 100\n")
        f.write(f"skynet_target = {ws / 2 if ws else 'NaN'}\n")
        f.write("idle_target = 1\n")

    # Markdown table.
    ctx = doc.get("context", {})
    out = []
    out.append(f'Medians over the repetitions (± coefficient of variation), {ctx.get("num_cpus", "?")} CPUs, {ctx.get("date", "")}.\n')
    out.append("| benchmark | bare `context::fiber` | Boost.Fiber | weft | ratios (Boost/weft > 1: weft faster) | budget | verdict |")
    out.append("|---|---|---|---|---|---|---|")
    r = ratio(y_weft, bare)
    Y = "ns_per_switch"
    out.append(f"| yield, ns per switch (2 fibers, 1 thread) | {fmt(bare)}{spread('yield/bare_context', Y)}; in a call: "
               f"{fmt(in_call['resume'])}{spread('yield/bare_context_in_call/resume', Y)} (resume), "
               f"{fmt(in_call['resume_with'])}{spread('yield/bare_context_in_call/resume_with', Y)} (resume_with) "
               f"| {fmt(y_boost)}{spread('yield/boost_fiber', Y)} (round_robin) | {fmt(y_weft)}{spread('yield/weft', Y)} (1 worker) "
               f"| {fmt(r, 2)}x bare, {fmt(ratio(y_weft, call_floor), 2)}x the switch in a call; Boost/weft {fmt(ratio(y_boost, y_weft), 2)} "
               f"| <= 1.5x bare ({fmt(1.5 * bare if bare else None)} ns) "
               f"| {'met' if r is not None and r <= 1.5 else 'MISSED'} |")
    for batch in (100, 1000):
        b = sj[f"spawn_join/boost_fiber/batch:{batch}"]
        for w in (1, 2):
            v = sj[f"spawn_join/weft/workers:{w}/batch:{batch}"]
            bk, wk = f"spawn_join/boost_fiber/batch:{batch}", f"spawn_join/weft/workers:{w}/batch:{batch}"
            out.append(f"| spawn+join, ns per fiber, batch {batch}, weft {w} worker{'s' if w > 1 else ''} | - "
                       f"| {fmt(b)}{spread(bk, 'ns_per_fiber')} (round_robin) | {fmt(v)}{spread(wk, 'ns_per_fiber')} "
                       f"| {fmt(ratio(v, 100), 2)}x budget; Boost/weft {fmt(ratio(b, v), 2)} | <= 100 ns "
                       f"| {'met' if v is not None and v <= 100 else 'MISSED'} |")
    for w in (1, 2):
        v = sk[f"skynet/weft/workers:{w}"]
        ref = ws if w == 2 else sk["skynet/boost_round_robin"]
        ref_name = "work_stealing, 2 threads" if w == 2 else "round_robin, 1 thread"
        ref_key = "skynet/boost_work_stealing" if w == 2 else "skynet/boost_round_robin"
        wk = f"skynet/weft/workers:{w}"
        speed = ratio(ref, v)
        verdict = ("met" if speed is not None and speed >= 2 else "MISSED") if w == 2 else "(no budget)"
        out.append(f"| skynet 1M, ms per run, weft {w} worker{'s' if w > 1 else ''} (cold: {fmt(sk_cold[f'skynet/weft/workers:{w}'], 0)} ms) | - "
                   f"| {fmt(ref, 0)}{spread(ref_key, 'ms_per_run')} ({ref_name}) | {fmt(v, 0)}{spread(wk, 'ms_per_run')} | Boost/weft {fmt(speed, 2)} "
                   f"| {'>= 2x faster than Boost work_stealing' if w == 2 else '-'} | {verdict} |")
    iv = idle["idle/weft"]
    out.append(f"| idle, % of one core (1000 fibers asleep, 2 threads) | - "
               f"| {fmt(idle['idle/boost_work_stealing'], 1)}{spread('idle/boost_work_stealing', 'cpu_pct')} (work_stealing) "
               f"| {fmt(iv, 3)}{spread('idle/weft', 'cpu_pct')} | - | < 1 % | {'met' if iv is not None and iv < 1 else 'MISSED'} |")
    out.append(f"| idle, resident KiB per sleeping fiber | - | - | {fmt(rss, 1)} | - | one touched page + control block | - |")
    if errors:
        out.append("\nERRORS:\n" + "\n".join(f"- {e}" for e in errors))
    print("\n".join(out))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
