# panel settings for plot_kv.gp (generated)
depth_a = 1
depth_b = 16
reps = 5
clients = 50
requests = 1000000
lat_ymin = 0.1
lat_ymax = 3.021
machine = "2 CPUs, 2026-11-27 11:10:41 UTC"
verdict0 = "MISSED: -P 1 SET: kv_server / redis-server req/s = 1.00x (>= 1.00x)"
verdict1 = "met: -P 1 GET: kv_server / redis-server req/s = 1.02x (>= 1.00x)"
verdict2 = "met: -P 16 SET: kv_server / redis-server req/s = 1.00x (>= 1.00x)"
verdict3 = "MISSED: -P 16 GET: kv_server / redis-server req/s = 0.96x (>= 1.00x)"
verdicts = 4
