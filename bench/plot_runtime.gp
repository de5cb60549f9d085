# Renders docs/img/runtime_bench.png from the medians that runtime_figures.py extracted.
# usage: gnuplot -e "datafile='runtime_bench.dat'; targets='runtime_targets.gp'; outfile='x.png'" plot_runtime.gp
# Four panels, one per budget line of docs/design.md; the dashed red line is the budget.

if (!exists("datafile")) datafile = 'docs/bench/runtime_bench.dat'
if (!exists("targets")) targets = 'docs/bench/runtime_targets.gp'
if (!exists("outfile")) outfile = 'docs/img/runtime_bench.png'
load targets

set terminal pngcairo size 1400,1100 font "DejaVu Sans,11" noenhanced
set output outfile

# "|" in a label is a line break.
nl(s) = strstrt(s, "|") > 0 ? s[1:strstrt(s, "|") - 1] . "\n" . nl(s[strstrt(s, "|") + 1:]) : s

set style fill solid 0.85 border -1
set style textbox opaque noborder margins 1,1  # value labels stay legible over the budget line
set grid ytics lc rgb "#dddddd"
set key top left opaque
set xtics scale 0 font ",10"
set ytics nomirror
set border 3
set tmargin 4
set bmargin 5
set offsets 0, 0, graph 0.12, 0  # headroom for the value labels
bar = 0.3

set multiplot layout 2,2 title "weft vs Boost.Fiber 1.74 (medians; 64 KiB stacks; 2-core VM)" font ",14"

# 1. yield
set title "Yield ping-pong, 2 fibers on 1 thread\n(ns per switch, lower is better)"
set ylabel "ns per switch"
set xrange [-0.6:3.6]
set yrange [0:*]
plot datafile index 0 using 0:2:($0 - bar):($0 + bar):(0):2:3:xtic(nl(strcol(1))) with boxxyerror lc rgb variable notitle, \
     yield_target with lines dt 2 lw 2 lc rgb "red" title sprintf("budget: 1.5x bare switch = %.1f ns", yield_target), \
     '' index 0 using 0:2:(sprintf("%.1f", $2)) with labels boxed offset 0,0.8 notitle

# 2. spawn + join
set title "spawn + join of empty fibers, 10^6 per run\n(ns per fiber amortised, lower is better)"
set ylabel "ns per fiber"
set xrange [-0.6:5.6]
plot datafile index 1 using 0:2:($0 - bar):($0 + bar):(0):2:3:xtic(nl(strcol(1))) with boxxyerror lc rgb variable notitle, \
     spawn_target with lines dt 2 lw 2 lc rgb "red" title "budget: 100 ns", \
     '' index 1 using 0:2:(sprintf("%.0f", $2)) with labels boxed offset 0,0.8 notitle

# 3. skynet
set title "skynet, 10^6 leaves (1,111,111 fibers)\n(ms per run, lower is better)"
set key top right
set ylabel "ms per run"
set xrange [-0.6:3.6]
plot datafile index 2 using 0:2:($0 - bar):($0 + bar):(0):2:3:xtic(nl(strcol(1))) with boxxyerror lc rgb variable notitle, \
     skynet_target with lines dt 2 lw 2 lc rgb "red" title sprintf("budget, 2 workers: Boost work_stealing / 2 = %.0f ms", skynet_target), \
     '' index 2 using 0:2:(sprintf("%.0f", $2)) with labels boxed offset 0,0.8 notitle

# 4. idle (log scale: the gap is five orders of magnitude)
set key top right
set offsets 0, 0, 0, 0
set title "Idle: 1000 fibers asleep for 10 s, 2 threads\n(CPU over 2 s, % of one core, log scale)"
set ylabel "% of one core"
set xrange [-0.6:1.6]
set logscale y
ymin = 1e-4
set yrange [ymin:1000]
set format y "%g"
plot datafile index 3 using 0:2:($0 - bar):($0 + bar):(ymin):2:3:xtic(nl(strcol(1))) with boxxyerror lc rgb variable notitle, \
     idle_target with lines dt 2 lw 2 lc rgb "red" title "budget: < 1 %", \
     '' index 3 using 0:2:(sprintf("%.3g %%", $2)) with labels boxed offset 0,0.8 notitle

unset multiplot
