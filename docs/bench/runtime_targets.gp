# budget lines for plot_runtime.gp (generated)
yield_target = 11.563644666301968
spawn_target = 100
skynet_target = 1261.047735
idle_target = 1
