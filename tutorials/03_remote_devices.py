"""Tutorial 3: measure candidates on remote devices through TVM's RPC tracker.

    python tutorials/03_remote_devices.py              # about 3 minutes on a 2-core machine
    python tutorials/03_remote_devices.py --trials 16  # a quick look

On real boards, start the tracker on the host and one server per board:

    python -m tvm.exec.rpc_tracker --host 0.0.0.0 --port 9190
    python -m tvm.exec.rpc_server --tracker HOST:9190 --key my-board     # on each board

then tune with ``ms_droplet.runners.rpc_runner("HOST:9190", "my-board")`` or
``ms-droplet tune --rpc HOST:9190 --rpc-key my-board``. This script starts a tracker and two
servers on 127.0.0.1 instead, so that it runs anywhere.
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np
import tvm
from tvm import te
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.meta_schedule.testing import te_workload

import ms_droplet  # noqa: F401  (registers strategy="droplet")
from ms_droplet.builder import fast_builder
from ms_droplet.runners import LocalRPCCluster, rpc_runner
from ms_droplet.workloads import host_target

parser = argparse.ArgumentParser(description="Tune a matmul, measuring on two RPC servers.")
parser.add_argument("--trials", type=int, default=64)
parser.add_argument("--work-dir", default=None, help="default: a temporary folder")
args = parser.parse_args()
work_dir = Path(args.work_dir or tempfile.mkdtemp(prefix="ms_droplet_tutorial_"))

mod = tvm.IRModule({"main": te.create_prim_func(te_workload.matmul(128, 128, 128))})
# The target describes the device the servers run on (here: this CPU).
target = host_target()

with LocalRPCCluster(work_dir / "rpc-logs", num_servers=2, key="cpu") as cluster:
    print("tracker at", cluster.tracker)
    # One candidate per server at a time: rpc_runner asks the tracker how many there are.
    runner = rpc_runner(cluster.tracker, "cpu", repeat=3)
    database = ms.tune_tir(
        mod=mod,
        target=target,
        work_dir=str(work_dir),
        max_trials_global=args.trials,
        num_trials_per_iter=8,
        strategy="droplet",
        builder=fast_builder(),  # builds here; the servers only load and time the kernels
        runner=runner,
        seed=0,
    )
    for name in ("server-0", "server-1"):
        print(f"{name} measured {cluster.served(name)} candidates")

sch = ms.tir_integration.compile_tir(database, mod, target)
lib = tvm.compile(sch.mod, target=target).jit()
rng = np.random.default_rng(0)
a, b = (rng.uniform(-1, 1, (128, 128)).astype("float32") for _ in range(2))
c = tvm.runtime.tensor(np.zeros((128, 128), "float32"))
lib["main"](tvm.runtime.tensor(a), tvm.runtime.tensor(b), c)
np.testing.assert_allclose(c.numpy(), a @ b, rtol=1e-4, atol=1e-4)
print("output matches numpy")
