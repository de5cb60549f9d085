# Renders docs/img/kv.png from the medians that kv_figures.py extracted.
# usage: gnuplot -e "datafile='kv.dat'; targets='kv.targets.gp'; outfile='x.png'; libdir='bench'" plot_kv.gp
# Four panels of bars (Debian's redis-server red, weft's kv_server blue) and one with the
# verdicts. A dashed red segment over a bar is that bar's target.

if (!exists("datafile")) datafile = 'docs/bench/kv.dat'
if (!exists("targets")) targets = 'docs/bench/kv.targets.gp'
if (!exists("outfile")) outfile = 'docs/img/kv.png'
if (!exists("libdir")) libdir = 'bench'
load targets

set terminal pngcairo size 2000,1050 font "DejaVu Sans,11" noenhanced
set output outfile
load libdir.'/plot_bars.gp'

set multiplot layout 2,3 title sprintf("weft kv_server (2 workers) vs redis-server: redis-benchmark -t set,get -c %d -n %d over loopback (medians of %d run(s); %s)", clients, requests, reps, machine) font ",14"

# 1, 2. throughput at the two pipeline depths
set ylabel "req/s"
set yrange [0:*]
set offsets 0, 0, graph 0.12, 0
set xrange [-0.6:3.6]
set format y "%.0s%c"
target_title = "target: redis-server (median)"
do for [p = 0:1] {
  set title sprintf("Requests per second, -P %d\n(higher is better)", p == 0 ? depth_a : depth_b)
  blk = p
  plot @bars_with_target
}

# 3. p99 latency (log)
set title "p99 latency per test and depth\n(ms, lower is better, log)"
set format y "%g"
set logscale y
set offsets 0, 0, 0, 0
set ylabel "ms (log)"
set xrange [-0.6:7.6]
set yrange [lat_ymin:lat_ymax]
blk = 2
ybase = lat_ymin
lab(v) = sprintf("%.3g", v)
plot @bars
unset logscale y
ybase = 0

# 4. server CPU per request
set title "Server CPU per request, SET and GET together\n(user + system from /proc; us, lower is better)"
set ylabel "us per request"
set yrange [0:*]
set offsets 0, 0, graph 0.12, 0
set xrange [-0.6:3.6]
set format y "%g"
blk = 3
lab(v) = sprintf("%.2f", v)
plot @bars

# 5. the verdicts
eval verdict_panel
unset multiplot
