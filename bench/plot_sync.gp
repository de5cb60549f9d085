# Renders docs/img/sync_bench.png from the medians that sync_figures.py extracted.
# usage: gnuplot -e "datafile='sync_bench.dat'; targets='sync_bench.targets.gp'; outfile='x.png'" plot_sync.gp
# Five panels of bars (Boost.Fiber orange, weft blue, std green; lighter: the yield reference)
# and a sixth with the verdicts. A dashed red segment over a bar is that bar's target.

if (!exists("datafile")) datafile = 'docs/bench/sync_bench.dat'
if (!exists("targets")) targets = 'docs/bench/sync_bench.targets.gp'
if (!exists("outfile")) outfile = 'docs/img/sync_bench.png'
load targets

set terminal pngcairo size 1800,1150 font "DejaVu Sans,11" noenhanced
set output outfile

# "|" in a label is a line break.
nl(s) = strstrt(s, "|") > 0 ? s[1:strstrt(s, "|") - 1] . "\n" . nl(s[strstrt(s, "|") + 1:]) : s
# A duration in ns as a short label.
dur(v) = v < 1000 ? sprintf("%.0f ns", v) : v < 1e6 ? sprintf("%.3g us", v / 1e3) : sprintf("%.3g ms", v / 1e6)

set style fill solid 0.85 border -1
set style textbox opaque noborder margins 1,1
set grid ytics lc rgb "#dddddd"
set key top left opaque reverse Left samplen 3
set xtics scale 0 font ",10"
set ytics nomirror
set border 3
set tmargin 4
set bmargin 5
bar = 0.3
tick = 0.42  # half-width of a target segment

set multiplot layout 2,3 title "weft vs Boost.Fiber 1.74: synchronization (medians; 64 KiB stacks; 2-core VM)" font ",14"

# Bars of block `i` with their value labels and per-bar targets (column 4, NaN = none).
# Linear panels start at 0, log panels at `ymin`.

# 1. mutex contention (log: the weft 2-worker bar is far off)
set title "Mutex contention: 1000 fibers x 1000 locks,\nyield in every 100th critical section (ns per lock, log)"
set ylabel "ns per lock"
set logscale y
ymin = 10
set yrange [ymin:*]
set offsets 0, 0, 0, 0
set xrange [-0.6:3.6]
set format y "%g"
plot datafile index 0 using 0:2:($0 - bar):($0 + bar):(ymin):2:3:xtic(nl(strcol(1))) with boxxyerror lc rgb variable notitle, \
     '' index 0 using ($0 - tick):4:(2 * tick):(0) with vectors nohead lc rgb "red" dt 2 lw 2 title "target: Boost / 2", \
     '' index 0 using 0:2:(dur($2)) with labels boxed offset 0,0.8 notitle

# 2. one thread: yields and channel round trips
unset logscale y
set title "One worker / one thread: yield, the park/wake floor, channel ping-pong\n(ns per yield or per round trip, lower is better)"
set ylabel "ns"
set yrange [0:*]
set offsets 0, 0, graph 0.12, 0
set xrange [-0.6:6.6]
plot datafile index 1 using 0:2:($0 - bar):($0 + bar):(0):2:3:xtic(nl(strcol(1))) with boxxyerror lc rgb variable notitle, \
     '' index 1 using ($0 - tick):4:(2 * tick):(0) with vectors nohead lc rgb "red" dt 2 lw 2 \
        title sprintf("target: 3x weft yield = %.0f ns (cap 1: and Boost buffered / 2)", 3 * yield_weft), \
     '' index 1 using 0:2:(sprintf("%.0f", $2)) with labels boxed offset 0,0.8 notitle

# 3. channels on two threads (log)
set title "Channel ping-pong on 2 workers/threads: free = unpinned\n(Boost work_stealing), apart = 1 fiber per worker/thread (log)"
set ylabel "ns per round trip"
set logscale y
ymin = 100
set yrange [ymin:*]
set offsets 0, 0, 0, 0
set xrange [-0.6:7.6]
plot datafile index 2 using 0:2:($0 - bar):($0 + bar):(ymin):2:3:xtic(nl(strcol(1))) with boxxyerror lc rgb variable notitle, \
     '' index 2 using 0:2:(dur($2)) with labels boxed offset 0,0.8 notitle

# 4. condition variable (log; from 10 ns: weft's one-worker round trip is under 100 ns)
set title "Condition-variable ping-pong (mutex + cv + turn flag)\nsame = 1 worker/thread; free, apart as for channels (log)"
ymin = 10
set yrange [ymin:*]
set xrange [-0.6:5.6]
plot datafile index 3 using 0:2:($0 - bar):($0 + bar):(ymin):2:3:xtic(nl(strcol(1))) with boxxyerror lc rgb variable notitle, \
     '' index 3 using 0:2:(dur($2)) with labels boxed offset 0,0.8 notitle

# 5. uncontended
unset logscale y
set title "Uncontended lock + unlock, one fiber or thread\n(ns per pair, lower is better)"
set ylabel "ns per lock + unlock"
set yrange [0:*]
set offsets 0, 0, graph 0.12, 0
set xrange [-0.6:2.6]
plot datafile index 4 using 0:2:($0 - bar):($0 + bar):(0):2:3:xtic(nl(strcol(1))) with boxxyerror lc rgb variable notitle, \
     '' index 4 using ($0 - tick):4:(2 * tick):(0) with vectors nohead lc rgb "red" dt 2 lw 2 title "target: std::mutex", \
     '' index 4 using 0:2:(sprintf("%.1f", $2)) with labels boxed offset 0,0.8 notitle

# 6. verdicts, as text
unset title
unset xtics
unset ytics
unset ylabel
unset grid
unset border
unset key
set xrange [0:1]
set yrange [0:1]
set offsets 0, 0, 0, 0
do for [i = 0:verdicts - 1] {
  v = value(sprintf("verdict%d", i))
  set label (i + 1) v at 0.02, 0.9 - i * 0.14 left font ",11" tc rgb (strstrt(v, "MISSED") > 0 ? "#c0392b" : "#1e7b34")
}
set label 20 "Targets of issue 3 (medians)" at 0.02, 1.02 left font ",13"
plot NaN notitle
unset multiplot
