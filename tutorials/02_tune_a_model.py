"""Tutorial 2: tune a whole model with Droplet Search: a network built with relax.frontend.nn, an ONNX file,
and Relax's own ``tvm.compile`` with a Droplet tuning pipeline.

    python tutorials/02_tune_a_model.py              # about 10 minutes on a 2-core machine
    python tutorials/02_tune_a_model.py --trials 16  # a quick look

The command line does the same in one line: ``ms-droplet tune-model cnn`` or
``ms-droplet tune-model model.onnx``.
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np
import tvm
from tvm import relax
from tvm.s_tir import meta_schedule as ms

import ms_droplet  # noqa: F401  (registers strategy="droplet")
from ms_droplet.builder import fast_builder
from ms_droplet.machine import use_all_cores
from ms_droplet.model_tuning import compile_model, time_interleaved
from ms_droplet.models import load_onnx, onnx_cnn_reference, small_cnn, write_onnx_cnn
from ms_droplet.relax_pipeline import prepare, tuning_pipeline
from ms_droplet.runners import local_runner
from ms_droplet.workloads import host_target

# TVM's runtime runs kernels on half the logical CPUs on x86-64 (it skips hyper-threads); on a machine
# without them that is half the cores. Set before this process runs its first kernel (timed below).
use_all_cores()

parser = argparse.ArgumentParser(description="Tune a small CNN (nn) and an ONNX CNN with Droplet Search.")
parser.add_argument("--trials", type=int, default=300, help="trial budget per model, over all its tasks")
parser.add_argument("--work-dir", default=None, help="default: a temporary folder")
args = parser.parse_args()
work_dir = Path(args.work_dir or tempfile.mkdtemp(prefix="ms_droplet_tutorial_"))
target = host_target()


def tune_and_run(name, mod, inputs):
    # 1. Lower the Relax model to fused TIR functions: these are MetaSchedule's tasks. Compile this
    #    same prepared module later, so that the functions compiled are the functions tuned.
    mod = prepare(mod)
    tasks = ms.relax_integration.extract_tasks(mod, target)
    for task in tasks:
        print(f"  task {task.task_name} (weight {task.weight})")
    # 2. Tune every task; the task scheduler shares the budget by their weights and gains.
    database = ms.relax_integration.tune_relax(
        mod=mod,
        params={},  # the weights are already bound as constants
        target=target,
        work_dir=str(work_dir / name),
        max_trials_global=args.trials,
        num_trials_per_iter=8,
        strategy="droplet",
        builder=fast_builder(),
        runner=local_runner(repeat=3),
        seed=0,
    )
    # 3. Compile with the tuned schedules. compile_model raises if a tuned task would run untuned
    #    and says, per task, that its schedule was applied. (MetaSchedule's own
    #    ms.relax_integration.compile_relax(database, mod, target, params=None) gives the same build.)
    exe, applied = compile_model(mod, target, database, tasks)
    print(f"  tuned schedules applied: {sorted(applied)}")
    untuned, _ = compile_model(mod, target)
    # 4. Run on the Relax VM; time the tuned and untuned builds in turn.
    vm = relax.VirtualMachine(exe, tvm.cpu())
    out = vm["main"](*(tvm.runtime.tensor(v) for v in inputs.values())).numpy()
    latency = time_interleaved({"untuned": untuned, "tuned": exe}, inputs, rounds=5)
    print(f"  {name}: {latency['tuned'] * 1e6:.1f} us per inference, untuned {latency['untuned'] * 1e6:.1f} us; "
          f"database in {work_dir / name}")
    return out


# Part A: a ResNet-like CNN written with tvm.relax.frontend.nn, random weights, numpy reference.
cnn = small_cnn()
print("A. nn CNN")
out = tune_and_run("cnn", cnn.mod, cnn.inputs)
np.testing.assert_allclose(out, cnn.reference(cnn.inputs), rtol=1e-3, atol=1e-3)

# Part B: an ONNX file (written here with onnx.helper; use your own), imported by TVM's frontend.
onnx_path = work_dir / "cnn.onnx"
weights = write_onnx_cnn(onnx_path)
model = load_onnx(onnx_path)  # or tvm.relax.frontend.onnx.from_onnx(onnx.load(path), shape_dict)
print("B. ONNX CNN", onnx_path)
out = tune_and_run("onnx", model.mod, model.inputs)
np.testing.assert_allclose(out, onnx_cnn_reference(weights, model.inputs["input"]), rtol=1e-3, atol=1e-3)

# Part C: where Relax tunes by itself. tuning_pipeline is Relax's "static_shape_tuning" pipeline with
# Droplet, the fast builder and this package's runner; it prepares, tunes, applies (checked) and lowers.
print("C. tvm.compile with relax_pipeline=tuning_pipeline(...)")
pipeline = tuning_pipeline(args.trials, work_dir=work_dir / "pipeline", num_trials_per_iter=8, seed=0)
exe = tvm.compile(cnn.mod, target=target, relax_pipeline=pipeline)
vm = relax.VirtualMachine(exe, tvm.cpu())
out = vm["main"](*(tvm.runtime.tensor(v) for v in cnn.inputs.values())).numpy()
np.testing.assert_allclose(out, cnn.reference(cnn.inputs), rtol=1e-3, atol=1e-3)
print("output matches numpy")
