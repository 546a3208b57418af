import os, signal, subprocess, sys, time
sys.path.insert(0, "/work/main")
mode = sys.argv[1]
real = subprocess.Popen
def popen(args, *a, **k):
    if "stepflow_local.server" in args:
        args = [args[0], "/tmp/prof/profserve.py", *args[3:]]
        k["env"] = {**k["env"], "PYTHONPATH": "/tmp/yappi:/work/main", "PROF_OUT": f"/tmp/prof/{mode}.pstat"}
    return real(args, *a, **k)
subprocess.Popen = popen
from bench import dag_service as d
from bench.local_load import Service
svc = Service(store="memory")
r = d.Runner(svc)
for seed in range(3):
    nodes, edges, _ = d.dag(14, seed, 0.0)
    zero = dict.fromkeys(nodes, 0.0)
    name = f"p_{mode}_{seed}"
    r.register(d.definition(name, nodes, edges, zero, scheduling="exact" if mode == "gates" else "planned"))
    for _ in range(6):
        i = r.start(name); r.wait([i])
svc.process.send_signal(signal.SIGUSR2)
svc.process.wait(60)
print("done", mode)
