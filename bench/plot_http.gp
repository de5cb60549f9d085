# Renders docs/img/http.png from the medians that http_figures.py extracted.
# usage: gnuplot -e "datafile='http.dat'; targets='http.targets.gp'; outfile='x.png'; libdir='bench'" plot_http.gp
# Three panels of bars (the hand-written epoll server green, weft's http_server blue) and one
# with the verdict. A dashed red segment over a bar is that bar's target.

if (!exists("datafile")) datafile = 'docs/bench/http.dat'
if (!exists("targets")) targets = 'docs/bench/http.targets.gp'
if (!exists("outfile")) outfile = 'docs/img/http.png'
if (!exists("libdir")) libdir = 'bench'
load targets

set terminal pngcairo size 2000,560 font "DejaVu Sans,11" noenhanced
set output outfile
load libdir.'/plot_bars.gp'

set multiplot layout 1,4 title sprintf("weft http_server vs a hand-written epoll HTTP server: wrk -t1 -c%d over loopback, GET / (16-byte body), 2 workers each (medians of %d run(s); %s)", conns, reps, machine) font ",14"

# 1. throughput
set title "Requests per second\n(higher is better)"
set ylabel "req/s"
set yrange [0:*]
set offsets 0, 0, graph 0.12, 0
set xrange [-0.6:1.6]
set format y "%.0s%c"
blk = 0
target_title = sprintf("target: %.1fx epoll (median)", target_ratio)
plot @bars_with_target

# 2. latency percentiles (log)
set title "wrk latency percentiles\n(lower is better, log)"
set format y "%g"
set logscale y
set offsets 0, 0, 0, 0
set ylabel "us (log)"
set xrange [-0.6:7.6]
set yrange [lat_ymin:lat_ymax]
blk = 1
ybase = lat_ymin
lab(v) = dur(v)
plot @bars
unset logscale y
ybase = 0

# 3. server CPU per request
set title "Server CPU per request (user + system,\nfrom /proc; us, lower is better)"
set ylabel "us per request"
set yrange [0:*]
set offsets 0, 0, graph 0.12, 0
set xrange [-0.6:1.6]
blk = 2
lab(v) = sprintf("%.2f", v)
plot @bars

# 4. the verdict
eval verdict_panel
unset multiplot
