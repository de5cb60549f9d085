# panel settings for plot_kv.gp (generated)
depth_a = 1
depth_b = 16
reps = 3
clients = 50
requests = 1000000
lat_ymin = 0.1
lat_ymax = 5.757
machine = "2 CPUs, 2026-11-26 09:52:33 UTC"
verdict0 = "met: -P 1 SET: kv_server / redis-server req/s = 1.00x (>= 1.00x)"
verdict1 = "MISSED: -P 1 GET: kv_server / redis-server req/s = 0.94x (>= 1.00x)"
verdict2 = "met: -P 16 SET: kv_server / redis-server req/s = 1.13x (>= 1.00x)"
verdict3 = "met: -P 16 GET: kv_server / redis-server req/s = 1.07x (>= 1.00x)"
verdicts = 4
