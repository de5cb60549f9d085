# What plot_http.gp and plot_kv.gp share: the bar style, label helpers, and the verdict panel.
# Loaded with `load libdir.'/plot_bars.gp'` after `set terminal`/`set output`; needs a targets
# file loaded first (verdicts, verdict0, ...). A data block line is: "label" value colour target.

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

# Bars of data block `blk`, coloured per line, and a dashed red target segment where a line has
# one: `plot @bars_with_target`. lab(v) is the label of a value (redefine it per panel), ybase
# where the bars start.
lab(v) = sprintf("%.0f", v)
bar_boxes = "datafile index blk using 0:2:($0 - bar):($0 + bar):(ybase):2:3:xtic(nl(strcol(1))) with boxxyerror lc rgb variable notitle"
bar_labels = "'' index blk using 0:2:(lab($2)) with labels boxed offset 0,0.8 notitle"
bars = bar_boxes . ", " . bar_labels
bars_with_target = bar_boxes . ", '' index blk using ($0 - tick):4:(2 * tick):(0) with vectors nohead lc rgb 'red' dt 2 lw 2 title target_title, " . bar_labels
ybase = 0

# The verdicts as text in a panel of their own ("|" breaks a line): `eval verdict_panel`.
verdict_panel = "unset title; unset xtics; unset ytics; unset ylabel; unset grid; unset border; unset key; unset logscale y; set xrange [0:1]; set yrange [0:1]; set offsets 0, 0, 0, 0; set label 20 verdict_heading at 0.02, 0.95 left font ',13'; do for [i = 0:verdicts - 1] { v = value(sprintf('verdict%d', i)); set label (i + 1) nl(v) at 0.02, 0.82 - i * 0.1 left font ',11' tc rgb (strstrt(v, 'MISSED') > 0 ? '#c0392b' : '#1e7b34') }; plot NaN notitle"
verdict_heading = "Target of issue 5 (medians, paired ratios)"
