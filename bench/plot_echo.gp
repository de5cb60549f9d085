# Renders docs/img/echo.png from the medians that echo_figures.py extracted.
# usage: gnuplot -e "datafile='echo.dat'; targets='echo.targets.gp'; outfile='x.png'" plot_echo.gp
# Seven panels of bars (hand-written epoll green, weft blue, weft with a 256-byte buffer light
# blue) and an eighth with the verdicts. A dashed red segment over a bar is that bar's target.

if (!exists("datafile")) datafile = 'docs/bench/echo.dat'
if (!exists("targets")) targets = 'docs/bench/echo.targets.gp'
if (!exists("outfile")) outfile = 'docs/img/echo.png'
load targets

set terminal pngcairo size 2000,1050 font "DejaVu Sans,11" noenhanced
set output outfile

# "|" in a label is a line break.
nl(s) = strstrt(s, "|") > 0 ? s[1:strstrt(s, "|") - 1] . "\n" . nl(s[strstrt(s, "|") + 1:]) : s
# A duration in us as a short label.
dur(v) = v < 1000 ? sprintf("%.0f us", v) : sprintf("%.3g ms", v / 1e3)

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

set multiplot layout 2,4 title sprintf("weft vs a hand-written epoll server: echo over loopback, 2 workers each, client on the same cores (medians of %d run(s); %s)", reps, machine) font ",14"

# 1. throughput
set title "Echo, 64-byte requests, closed loop\n(requests per second, higher is better)"
set ylabel "req/s"
set yrange [0:*]
set offsets 0, 0, graph 0.12, 0
set xrange [-0.6:3.6]
set format y "%.0s%c"
plot datafile index 0 using 0:2:($0 - bar):($0 + bar):(0):2:3:xtic(nl(strcol(1))) with boxxyerror lc rgb variable notitle, \
     '' index 0 using ($0 - tick):4:(2 * tick):(0) with vectors nohead lc rgb "red" dt 2 lw 2 title "target: 0.9x epoll (median)", \
     '' index 0 using 0:2:(sprintf("%.0f", $2)) with labels boxed offset 0,0.8 notitle

# 2, 3. latency (log)
set format y "%.0f"
set logscale y
set offsets 0, 0, 0, 0
set ylabel "us (log)"
set xrange [-0.6:5.6]
set yrange [lat_ymin:lat_ymax]
do for [p = 1:2] {
  set title sprintf("Echo latency, %d connections\n(us, lower is better, log)", p == 1 ? conns_a : conns_b)
  plot datafile index p using 0:2:($0 - bar):($0 + bar):(lat_ymin):2:3:xtic(nl(strcol(1))) with boxxyerror lc rgb variable notitle, \
       '' index p using 0:2:(dur($2)) with labels boxed offset 0,0.8 notitle
}
unset logscale y

# 4. server CPU per request
set title "Server CPU per request (user + system,\nfrom /proc; us, lower is better)"
set ylabel "us per request"
set yrange [0:*]
set offsets 0, 0, graph 0.12, 0
set xrange [-0.6:3.6]
plot datafile index 3 using 0:2:($0 - bar):($0 + bar):(0):2:3:xtic(nl(strcol(1))) with boxxyerror lc rgb variable notitle, \
     '' index 3 using 0:2:(sprintf("%.2f", $2)) with labels boxed offset 0,0.8 notitle

# 5. connection setup
set title sprintf("Connection setup: connect + 1 echo + close,\n%d loops at once (per second, higher is better)", setup_loops)
set ylabel "setups/s"
set xrange [-0.6:1.6]
set format y "%.0s%c"
plot datafile index 4 using 0:2:($0 - bar):($0 + bar):(0):2:3:xtic(nl(strcol(1))) with boxxyerror lc rgb variable notitle, \
     '' index 4 using 0:2:(sprintf("%.0f", $2)) with labels boxed offset 0,0.8 notitle
set format y "%g"

# 6. idle memory
set title sprintf("Server VmRSS per idle connection,\n%d connections after one echo each (KiB)", idle_conns)
set ylabel "KiB per connection"
set xrange [-0.6:2.6]
plot datafile index 5 using 0:2:($0 - bar):($0 + bar):(0):2:3:xtic(nl(strcol(1))) with boxxyerror lc rgb variable notitle, \
     '' index 5 using ($0 - tick):4:(2 * tick):(0) with vectors nohead lc rgb "red" dt 2 lw 2 title sprintf("target: epoll + one 4 KiB page + %.2f KiB", idle_allowance), \
     '' index 5 using 0:2:(sprintf("%.2f", $2)) with labels boxed offset 0,0.8 notitle

# 7. verdicts, as text (they run on into the eighth slot)
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
  set label (i + 1) v at 0.02, 0.8 - i * 0.14 left font ",11" tc rgb (strstrt(v, "MISSED") > 0 ? "#c0392b" : "#1e7b34")
}
set label 20 "Budget of docs/design.md (medians)" at 0.02, 0.95 left font ",13"
plot NaN notitle
unset multiplot
