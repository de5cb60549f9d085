# budget lines for plot_runtime.gp (generated)
yield_target = 11.406752243449782
spawn_target = 100
skynet_target = 1398.389645
idle_target = 1
