# panel settings for plot_http.gp (generated)
conns = 100
reps = 5
lat_ymin = 100
lat_ymax = 14730.0
target_ratio = 0.9
machine = "2 CPUs, 2026-11-26 11:00:36 UTC"
verdict0 = "met: http_server / epoll req/s = 0.92x (>= 0.90x);|server CPU per request 1.17x"
verdicts = 1
