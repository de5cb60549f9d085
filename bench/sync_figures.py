#!/usr/bin/python3
"""Extracts the figures of sync_bench's JSON (run with --benchmark_repetitions=N and
--benchmark_report_aggregates_only): medians of every counter, the ratios against the targets of
issue 3, a gnuplot data file (one block per chart panel), the target settings for plot_sync.gp
and a Markdown table.

usage: sync_figures.py RESULT.json OUT.dat OUT_targets.gp > table.md
Standard library only. Exit status 1 if a benchmark reported an error or a figure is missing.
"""
import json
import math
import sys

sys.dont_write_bytecode = True  # no __pycache__ next to the sources
from runtime_figures import load_medians, short  # noqa: E402 (same JSON conventions as runtime_bench)

BOOST, WEFT, STD = 0xDD8452, 0x4C72B0, 0x55A868
BOOST_REF, WEFT_REF = 0xEBB99A, 0x9DB3D6  # yields: the reference bars, lighter

PLACES = {
    "same": ("1 worker", "round_robin, 1 thread"),
    "free": ("2 workers, unpinned", "work_stealing, 2 threads"),
    "apart": ("2 workers, pinned apart", "2 threads, 1 fiber each"),
}


def fmt_ns(v):
    """A duration in ns, in the unit that keeps 3 significant digits."""
    if v is None:
        return "n/a"
    if v < 1e3:
        return f"{v:.1f} ns" if v < 100 else f"{v:.0f} ns"
    if v < 1e6:
        return f"{v / 1e3:.3g} µs"
    return f"{v / 1e6:,.3g} ms"


def fmt_x(v):
    return "n/a" if v is None else f"{v:.2f}x"


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def main():
    src, dat_path, gp_path = sys.argv[1:4]
    doc, med, cvs, errors = load_medians(src)
    fig = {short(k): v for k, v in med.items()}
    fig_cv = {short(k): v for k, v in cvs.items()}
    missing = []

    def c(name, counter):
        b = fig.get(name)
        if b is None or counter not in b:
            missing.append(f"{name} {counter}")
            return None
        return float(b[counter])

    def spread(name, counter):
        b = fig_cv.get(name)
        return "" if b is None or counter not in b else f" ±{100 * float(b[counter]):.0f}%"

    def cell(name, counter):
        v = c(name, counter)
        return f"{fmt_ns(v)}{spread(name, counter)}", v

    RT = "ns_per_round_trip"
    y_weft, y_boost = c("yield/weft", "ns_per_yield"), c("yield/boost", "ns_per_yield")
    pw = c("park_wake/weft/same", RT)  # the floor under a round trip: two parks, two wake-ups
    mx = {k: c(f"mutex_contention/{k}", "ns_per_lock") for k in
          ("boost/round_robin", "boost/work_stealing", "weft/workers:1", "weft/workers:2")}
    ch = {(impl, cap, p): c(f"channel/{impl}/cap:{cap}/{p}", RT)
          for impl in ("boost", "weft") for cap in (0, 1) for p in PLACES}
    cv = {(impl, p): c(f"cv/{impl}/{p}", RT) for impl in ("boost", "weft") for p in PLACES}
    un = {k: c(f"uncontended/{k}", "ns_per_pair") for k in ("std_mutex", "boost", "weft")}

    def verdict(ok):
        return "n/a" if ok is None else ("met" if ok else "**MISSED**")

    # ---- targets -------------------------------------------------------------------------------
    targets = []  # (what, measured, target, verdict) for the table
    panel = []    # (text, met) for the chart: short, ASCII only (gnuplot slices bytes)
    for w, ref_key, ref_name in ((2, "boost/work_stealing", "work_stealing, 2 threads"),
                                 (1, "boost/round_robin", "round_robin, 1 thread")):
        v, ref = mx[f"weft/workers:{w}"], mx[ref_key]
        sp = ratio(ref, v)
        # Issue 3 sets the contention target on 2 workers; the 1-worker pair is shown beside it.
        if w == 1:
            targets.append((f"mutex contention, weft 1 worker vs Boost {ref_name} (no target: issue 3 sets it on 2 workers)",
                            f"{fmt_ns(v)} vs {fmt_ns(ref)} per lock: Boost/weft = {fmt_x(sp)}", "-", "n/a"))
            panel.append((f"mutex, 1 worker: Boost/weft = {fmt_x(sp)} (no target)", None))
            continue
        targets.append((f"mutex contention, weft {w} workers vs Boost {ref_name}",
                        f"{fmt_ns(v)} vs {fmt_ns(ref)} per lock: Boost/weft = {fmt_x(sp)}",
                        "Boost/weft ≥ 2", verdict(None if sp is None else sp >= 2)))
        panel.append((f"mutex, {w} workers: Boost/weft = {fmt_x(sp)} (target >= 2x)",
                      None if sp is None else sp >= 2))
    for cap in (0, 1):
        v = ch[("weft", cap, "same")]
        r = ratio(v, y_weft)
        targets.append((f"channel cap {cap} round trip, 1 worker, vs weft yield",
                        f"{fmt_ns(v)} = {fmt_x(r)} one yield ({fmt_ns(y_weft)}); the park/wake floor "
                        f"alone is {fmt_ns(pw)} = {fmt_x(ratio(pw, y_weft))} yield",
                        f"≤ 3x yield (≤ {fmt_ns(3 * y_weft) if y_weft else 'n/a'})",
                        verdict(None if r is None else r <= 3)))
        panel.append((f"channel cap {cap}, 1 worker: {fmt_x(r)} weft yield (target <= 3x)",
                      None if r is None else r <= 3))
    v, ref = ch[("weft", 1, "same")], ch[("boost", 1, "same")]
    sp = ratio(ref, v)
    targets.append(("channel cap 1, 1 worker, vs Boost buffered_channel(2) on 1 thread",
                    f"{fmt_ns(v)} vs {fmt_ns(ref)}: Boost/weft = {fmt_x(sp)}",
                    "Boost/weft ≥ 2", verdict(None if sp is None else sp >= 2)))
    panel.append((f"channel cap 1, 1 worker: Boost/weft = {fmt_x(sp)} (target >= 2x)",
                   None if sp is None else sp >= 2))
    r = ratio(un["weft"], un["std_mutex"])
    targets.append(("uncontended lock+unlock, weft::mutex vs std::mutex",
                    f"{fmt_ns(un['weft'])} vs {fmt_ns(un['std_mutex'])}: weft/std = {fmt_x(r)}",
                    "weft/std ≤ 1", verdict(None if r is None else r <= 1)))
    panel.append((f"uncontended: weft/std::mutex = {fmt_x(r)} (target <= 1x)", None if r is None else r <= 1))

    # ---- gnuplot data: one block per panel, "label" value colour target ("|" = line break) ----
    nan = float("nan")

    def num(v):
        return "NaN" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.6g}"

    # The channel targets drawn over the weft bars: 3x yield, and for cap 1 also Boost buffered / 2.
    yield_x3 = 3 * y_weft if y_weft else None
    boost_half = ch[("boost", 1, "same")] / 2 if ch[("boost", 1, "same")] else None
    chan_target = {0: yield_x3, 1: min((x for x in (yield_x3, boost_half) if x is not None), default=None)}
    blocks = [
        # 0. mutex contention, ns per lock (log)
        [("Boost|round_robin|1 thread", mx["boost/round_robin"], BOOST, nan),
         ("weft|1 worker", mx["weft/workers:1"], WEFT, nan),
         ("Boost|work_stealing|2 threads", mx["boost/work_stealing"], BOOST, nan),
         ("weft|2 workers", mx["weft/workers:2"], WEFT,
          mx["boost/work_stealing"] / 2 if mx["boost/work_stealing"] else nan)],
        # 1. one thread: yields and channel round trips, ns
        [("Boost|yield", y_boost, BOOST_REF, nan), ("weft|yield", y_weft, WEFT_REF, nan),
         ("weft|park/wake|floor", pw, WEFT_REF, nan),
         ("Boost|unbuffered", ch[("boost", 0, "same")], BOOST, nan),
         ("weft|cap 0", ch[("weft", 0, "same")], WEFT, chan_target[0]),
         ("Boost|buffered(2)", ch[("boost", 1, "same")], BOOST, nan),
         ("weft|cap 1", ch[("weft", 1, "same")], WEFT, chan_target[1])],
        # 2. channels on two threads, ns (log)
        [(f"{'Boost' if impl == 'boost' else 'weft'}|cap {cap}|{p}", ch[(impl, cap, p)],
          BOOST if impl == "boost" else WEFT, nan)
         for p in ("free", "apart") for cap in (0, 1) for impl in ("boost", "weft")],
        # 3. condition variable, ns (log)
        [(f"{'Boost' if impl == 'boost' else 'weft'}|{p}", cv[(impl, p)], BOOST if impl == "boost" else WEFT, nan)
         for p in PLACES for impl in ("boost", "weft")],
        # 4. uncontended, ns per pair
        [("std::mutex|thread", un["std_mutex"], STD, nan),
         ("boost::fibers|::mutex|main fiber", un["boost"], BOOST, nan),
         ("weft::mutex|fiber", un["weft"], WEFT, un["std_mutex"])],
    ]
    with open(dat_path, "w") as f:
        f.write(f"# medians from {src}; label value colour target (NaN: none)\n")
        for i, blk in enumerate(blocks):
            if i:
                f.write("\n\n")
            for label, v, colour, tgt in blk:
                f.write(f'"{label}" {num(v)} {colour} {num(tgt)}\n')
    with open(gp_path, "w") as f:
        f.write("# target settings and verdict lines for plot_sync.gp (generated by sync_figures.py)\n")
        f.write(f"yield_weft = {num(y_weft)}\n")
        for i, (text, met) in enumerate(panel):
            word = "n/a" if met is None else ("met" if met else "MISSED")
            f.write(f"verdict{i} = {json.dumps(f'{word}: {text}')}\n")
        f.write(f"verdicts = {len(panel)}\n")

    # ---- Markdown ------------------------------------------------------------------------------
    ctx = doc.get("context", {})
    out = [f'Medians over the repetitions (± coefficient of variation), {ctx.get("num_cpus", "?")} CPUs, '
           f'{ctx.get("date", "")}.\n', "**Targets**\n",
           "| target | measured (medians) | target | verdict |", "|---|---|---|---|"]
    out += [f"| {a} | {b} | {t} | {v} |" for a, b, t, v in targets]

    out += ["", "**All figures** (Boost/weft > 1: weft faster; `apart` = sampled messages that went from one "
            "worker or thread to another)\n",
            "| benchmark | placement (weft / Boost) | Boost.Fiber | weft | Boost/weft | apart % (Boost / weft) |",
            "|---|---|---|---|---|---|"]

    def apart(name):
        b = fig.get(name)
        return "-" if b is None or "apart_pct" not in b else f"{float(b['apart_pct']):.0f}"

    out.append(f"| yield, ns per yield (2 fibers) | 1 worker / round_robin, 1 thread | {cell('yield/boost', 'ns_per_yield')[0]} "
               f"| {cell('yield/weft', 'ns_per_yield')[0]} | {fmt_x(ratio(y_boost, y_weft))} | - |")
    out.append(f"| park/wake floor (raw wait tickets), per round trip | 1 worker / - | - "
               f"| {cell('park_wake/weft/same', RT)[0]} | - | - |")
    for w, ref_key, ref_name in ((1, "boost/round_robin", "round_robin, 1 thread"),
                                 (2, "boost/work_stealing", "work_stealing, 2 threads")):
        wk = f"mutex_contention/weft/workers:{w}"
        bk = f"mutex_contention/{ref_key}"
        out.append(f"| mutex contention, per lock (ms per 10^6 locks: {c(bk, 'ms_per_run') or 0:,.0f} / "
                   f"{c(wk, 'ms_per_run') or 0:,.0f}) | {w} worker{'s' if w > 1 else ''} / {ref_name} "
                   f"| {cell(bk, 'ns_per_lock')[0]} | {cell(wk, 'ns_per_lock')[0]} "
                   f"| {fmt_x(ratio(mx[ref_key], mx[f'weft/workers:{w}']))} | - |")
    for p, (wp, bp) in PLACES.items():
        for cap in (0, 1):
            bk, wk = f"channel/boost/cap:{cap}/{p}", f"channel/weft/cap:{cap}/{p}"
            bname = "unbuffered_channel" if cap == 0 else "buffered_channel(2)"
            out.append(f"| channel cap {cap} (Boost {bname}), per round trip | {wp} / {bp} | {cell(bk, RT)[0]} "
                       f"| {cell(wk, RT)[0]} | {fmt_x(ratio(ch[('boost', cap, p)], ch[('weft', cap, p)]))} "
                       f"| {apart(bk)} / {apart(wk)} |")
    for p, (wp, bp) in PLACES.items():
        bk, wk = f"cv/boost/{p}", f"cv/weft/{p}"
        out.append(f"| condition variable, per round trip | {wp} / {bp} | {cell(bk, RT)[0]} | {cell(wk, RT)[0]} "
                   f"| {fmt_x(ratio(cv[('boost', p)], cv[('weft', p)]))} | {apart(bk)} / {apart(wk)} |")
    out.append(f"| uncontended lock+unlock, per pair (`std::mutex` on a thread: "
               f"{cell('uncontended/std_mutex', 'ns_per_pair')[0]}) | fiber / main fiber "
               f"| {cell('uncontended/boost', 'ns_per_pair')[0]} | {cell('uncontended/weft', 'ns_per_pair')[0]} "
               f"| {fmt_x(ratio(un['boost'], un['weft']))} | - |")
    if errors:
        out.append("\nERRORS:\n" + "\n".join(f"- {e}" for e in errors))
    if missing:
        out.append("\nMISSING (not in the JSON):\n" + "\n".join(f"- {m}" for m in sorted(set(missing))))
    print("\n".join(out))
    return 1 if errors or missing else 0


if __name__ == "__main__":
    sys.exit(main())
