"""Tutorial 1: tune one kernel with Droplet Search, check it, and compare it with the untuned build.

    python tutorials/01_tune_one_kernel.py              # about 3 minutes on a 2-core machine
    python tutorials/01_tune_one_kernel.py --trials 16  # a quick look
"""

import argparse
import tempfile

import numpy as np
import tvm
from tvm import te
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.meta_schedule.testing import te_workload

import ms_droplet  # registers strategy="droplet"
from ms_droplet.builder import fast_builder
from ms_droplet.machine import use_all_cores
from ms_droplet.runners import local_runner
from ms_droplet.workloads import host_target

# TVM's runtime runs kernels on half the logical CPUs on x86-64 (it skips hyper-threads); on a machine
# without them that is half the cores. Set before this process runs its first kernel (timed below).
use_all_cores()

parser = argparse.ArgumentParser(description="Tune a 128^3 matmul with Droplet Search.")
parser.add_argument("--trials", type=int, default=128)
parser.add_argument("--work-dir", default=None, help="default: a temporary folder")
args = parser.parse_args()

# 1. The kernel: a TE computation turned into a TIR PrimFunc inside an IRModule.
mod = tvm.IRModule({"main": te.create_prim_func(te_workload.matmul(128, 128, 128))})

# 2. The target. TVM 0.27 wants a dict; mcpu and num-cores change the tuned kernel a lot.
target = host_target()
print("target:", target)

# 3. Tune. "droplet" works like MetaSchedule's own names once ms_droplet is imported.
#    fast_builder() avoids importing every tensor intrinsic for each batch (see docs/design.md, "Build cost").
#    Two or more run-time samples per candidate let Droplet's t-test decide each move.
work_dir = args.work_dir or tempfile.mkdtemp(prefix="ms_droplet_tutorial_")
database = ms.tune_tir(
    mod=mod,
    target=target,
    work_dir=work_dir,
    max_trials_global=args.trials,
    num_trials_per_iter=16,
    strategy=ms_droplet.DropletSearch(seed=0),  # or simply strategy="droplet"
    builder=fast_builder(),
    runner=local_runner(repeat=3),  # 3 samples of >= 50 ms each
    seed=0,
)

# 4. The best schedule found, compiled like any TIR module.
sch = ms.tir_integration.compile_tir(database, mod, target)
print(sch.trace)
tuned = tvm.compile(sch.mod, target=target).jit()
untuned = tvm.compile(mod, target=target).jit()

# 5. Check it against numpy, then time both builds.
dev = tvm.cpu()
rng = np.random.default_rng(0)
a = rng.uniform(-1, 1, (128, 128)).astype("float32")
b = rng.uniform(-1, 1, (128, 128)).astype("float32")
args_ = [tvm.runtime.tensor(a, dev), tvm.runtime.tensor(b, dev), tvm.runtime.tensor(np.zeros((128, 128), "float32"), dev)]
tuned["main"](*args_)
np.testing.assert_allclose(args_[2].numpy(), a @ b, rtol=1e-4, atol=1e-4)
print("output matches numpy")
for name, lib in (("untuned", untuned), ("tuned", tuned)):
    seconds = np.median(lib.time_evaluator("main", dev, number=10, repeat=5)(*args_).results)
    print(f"{name:8s} {seconds * 1e6:9.1f} us")
print("database:", work_dir)
