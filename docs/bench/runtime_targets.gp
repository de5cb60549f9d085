# budget lines for plot_runtime.gp (generated)
yield_target = 10.468042203557312
spawn_target = 100
skynet_target = 1279.170933
idle_target = 1
