# budget lines for plot_runtime.gp (generated)
yield_target = 8.31935
spawn_target = 100
skynet_target = 692.3424735
idle_target = 1
