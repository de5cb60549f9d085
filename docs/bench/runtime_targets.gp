# budget lines for plot_runtime.gp (generated)
yield_target = 11.175600275974025
spawn_target = 100
skynet_target = 1699.25612675
idle_target = 1
