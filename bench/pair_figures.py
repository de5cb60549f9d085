"""What the figures scripts of the sample benchmarks share (http_figures.py, kv_figures.py; the
runs come from bench/run_http_bench.sh and bench/run_kv_bench.sh).

A run is a file pair in the runs directory: NNN-LABEL.meta (KEY=VALUE lines the script wrote:
server, CPU ticks before and after, client exit status, ...) and the client's own output beside
it (NNN-LABEL.wrk, NNN-LABEL.csv). The scripts alternate the two servers run by run, so the k-th
run of each server in a configuration ran back to back: verdicts use the median of those
pairs' ratios, which load drifting over the whole measurement disturbs less than the ratio of
the medians. echo_figures.py uses the formatting helpers and the command line too. Standard
library only.
"""
import glob
import json
import os
import statistics
import sys

sys.dont_write_bytecode = True


def fmt(v, nd=1, unit=""):
    return "n/a" if v is None else f"{v:,.{nd}f}{unit}"


def fmt_x(v):
    return "n/a" if v is None else f"{v:.2f}x"


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def num(v):
    return "NaN" if v is None else repr(float(v))


def read_env(path):
    """The "key: value" lines of an *.env.txt file as a dict."""
    env = {}
    with open(path) as f:
        for line in f:
            key, sep, value = line.partition(":")
            if sep:
                env[key.strip()] = value.strip()
    return env


def read_meta(path):
    """The KEY=VALUE lines of a .meta file; values that are integers become ints."""
    meta = {}
    with open(path) as f:
        for line in f:
            key, sep, value = line.rstrip("\n").partition("=")
            if not sep:
                continue
            try:
                meta[key] = int(value)
            except ValueError:
                meta[key] = value
    return meta


def read_runs(runs_dir, suffix, parse):
    """Every run of runs_dir in script order: `parse(client_output, meta)` turns the client's
    output into a list of records (a wrk run gives one, a redis-benchmark run one per test);
    each is merged with the run's meta, its server CPU seconds and its file name."""
    records = []
    for meta_path in sorted(glob.glob(os.path.join(runs_dir, "*.meta"))):
        meta = read_meta(meta_path)
        base = meta_path[: -len(".meta")]
        try:
            with open(base + suffix) as f:
                text = f.read()
        except OSError:
            text = ""
        before, after, hz = meta.get("cpu_ticks_before", -1), meta.get("cpu_ticks_after", -1), meta.get("clk_tck", 0)
        cpu_s = (after - before) / hz if before >= 0 and after >= 0 and hz else None
        for rec in parse(text, meta):
            run = dict(meta)
            run.update(rec)
            run["file"] = os.path.basename(base + suffix)
            if cpu_s is not None:
                run["server_cpu_s"] = cpu_s
            records.append(run)
    return records


def group(runs, keys):
    """Runs grouped by the values of `keys`, in script order within a group."""
    groups = {}
    for r in runs:
        groups.setdefault(tuple(r.get(k) for k in keys), []).append(r)
    return groups


def summarize(runs, keys, metrics):
    """One record per group of `keys`: the number of runs, the errors summed, the median of each
    metric, and the lowest and highest req/s."""
    summary = []
    for values, rs in sorted(group(runs, keys).items(), key=lambda kv: tuple(str(v) for v in kv[0])):
        s = dict(zip(keys, values))
        s["runs"] = len(rs)
        s["errors"] = sum(r.get("errors", 0) for r in rs)
        for k in metrics:
            if k == "errors":
                continue
            vals = [r[k] for r in rs if r.get(k) is not None]
            if vals:
                s[k] = statistics.median(vals)
        rps = [r["rps"] for r in rs if r.get("rps") is not None]
        if rps:
            s["rps_min"], s["rps_max"] = min(rps), max(rps)
        summary.append(s)
    return summary


def paired(runs, keys, base, cand, metrics):
    """For each configuration (the values of `keys` other than "server"): the median over the
    back-to-back pairs of cand / base, per metric, as METRIC_ratio."""
    config_keys = [k for k in keys if k != "server"]
    by_config = group(runs, config_keys)
    out = []
    for values, rs in sorted(by_config.items(), key=lambda kv: tuple(str(v) for v in kv[0])):
        b = [r for r in rs if r.get("server") == base]
        c = [r for r in rs if r.get("server") == cand]
        n = min(len(b), len(c))
        if n == 0:
            continue
        p = dict(zip(config_keys, values))
        p["pairs"] = n
        for k in metrics:
            rs_k = [y[k] / x[k] for x, y in zip(b, c) if x.get(k) and y.get(k) is not None]
            if rs_k:
                p[k + "_ratio"] = statistics.median(rs_k)
        out.append(p)
    return out


def collect_pairs(runs_dir, env_path, suffix, parse, keys, metrics, pair, requests_of):
    """The "collect" step: reads the runs (see read_runs), adds each one's server CPU time per
    request (`requests_of(run)` requests), and writes to stdout the JSON document the report
    reads: env, summary (medians per `keys`), paired_ratios (`pair` is (base server, candidate
    server, the metrics to divide)) and every run."""
    runs = read_runs(runs_dir, suffix, parse)
    for r in runs:
        n = requests_of(r)
        if r.get("server_cpu_s") is not None and n:
            r["server_cpu_us_per_request"] = r["server_cpu_s"] * 1e6 / n
    doc = {"env": read_env(env_path), "summary": summarize(runs, keys, metrics),
           "paired_ratios": paired(runs, keys, *pair),
           "runs": runs}
    json.dump(doc, sys.stdout, indent=1)
    sys.stdout.write("\n")


def load(path):
    """The document collect_pairs wrote."""
    with open(path) as f:
        return json.load(f)


def server_row(prefix, s, cells):
    """A Markdown table row: the `prefix` cells, req/s with its range over the runs, then each
    (key, digits, unit) of `cells` from the summary record `s`; n/a throughout if `s` is None."""
    if s is None:
        return "| " + " | ".join(prefix + ["n/a"] * (1 + len(cells))) + " |"
    rps = f'{fmt(s.get("rps"), 0)} ({fmt(s.get("rps_min"), 0)}–{fmt(s.get("rps_max"), 0)})'
    return "| " + " | ".join(prefix + [rps] + [fmt(s.get(k), nd, unit) for k, nd, unit in cells]) + " |"


def verdict_word(ok):
    return "n/a" if ok is None else ("met" if ok else "MISSED")


def write_dat(path, src, blocks):
    """A gnuplot data file: one block per panel (two blank lines apart), a bar a line:
    "label" value colour target (NaN: no value, no target). "|" in a label is a line break."""
    with open(path, "w") as f:
        f.write(f"# medians from {src}; label value colour target (NaN: none)\n")
        for i, b in enumerate(blocks):
            if i:
                f.write("\n\n")
            for label, v, colour, tgt in b or [("n/a", None, 0, None)]:
                f.write(f'"{label}" {num(v)} {colour} {num(tgt)}\n')


def write_targets(path, script, settings, verdicts):
    """The panel settings of a gnuplot script: NAME = value lines (strings quoted), then
    verdict0.. and verdicts (their count), each "met: ...", "MISSED: ..." or "n/a: ..."."""
    with open(path, "w") as f:
        f.write(f"# panel settings for {script} (generated)\n")
        for name, value in settings.items():
            text = json.dumps(value) if isinstance(value, (str, int)) else num(value)
            f.write(f"{name} = {text}\n")
        for i, (_, ok, text) in enumerate(verdicts):
            f.write(f"verdict{i} = {json.dumps(verdict_word(ok) + ': ' + text)}\n")
        f.write(f"verdicts = {len(verdicts)}\n")


def print_report(lines, verdicts, problems):
    """Prints the table `lines`, then the verdicts (text, ok, short text) as a Markdown list,
    then the problems, if any."""
    lines = lines + [f"- {text}: {'n/a' if ok is None else ('met' if ok else '**MISSED**')}" for text, ok, _ in verdicts]
    if problems:
        lines.append("\nProblems: " + "; ".join(problems))
    print("\n".join(lines))


def machine_line(env, what):
    """The first line of a table: runs, machine, date, commit, load."""
    return (f'{what}; {env.get("nproc", "?")} CPUs ({env.get("cpu", "?")}), {env.get("date", "")}; '
            f'commit {env.get("commit", "?")}. Load average before / after: '
            f'{env.get("load before", "?")} / {env.get("load after", "?")}.\n')


def cli_main(usage, collect, report):
    """The command line of a figures script: "collect RUNS_DIR ENV.txt" (JSON on stdout) or
    "report JSON OUT.dat OUT.targets.gp" (the table on stdout); returns the exit status."""
    if len(sys.argv) == 4 and sys.argv[1] == "collect":
        collect(sys.argv[2], sys.argv[3])
        return 0
    if len(sys.argv) == 5 and sys.argv[1] == "report":
        return report(*sys.argv[2:5])
    sys.stderr.write(usage)
    return 2
