# panel settings for plot_kv.gp (generated)
depth_a = 1
depth_b = 16
reps = 3
clients = 50
requests = 1000000
lat_ymin = 1
lat_ymax = 7.293
machine = "2 CPUs, 2026-11-26 06:04:40 UTC"
verdict0 = "met: -P 1 SET: kv_server / redis-server req/s = 1.14x (>= 1.00x)"
verdict1 = "met: -P 1 GET: kv_server / redis-server req/s = 1.01x (>= 1.00x)"
verdict2 = "met: -P 16 SET: kv_server / redis-server req/s = 1.14x (>= 1.00x)"
verdict3 = "met: -P 16 GET: kv_server / redis-server req/s = 1.09x (>= 1.00x)"
verdicts = 4
