"""Time kernels in several fresh processes: one process is one draw of where its memory lands.

On Zen 4 the same T2D-1 library, on the same inputs, ran at 0.69 ms in some processes and at up to
1.6 ms in others, every round of a process alike; with address-space randomisation off
(``setarch -R``) it ran at one speed in every process: 0.73 ms loaded alone, 1.28 ms with five
other libraries loaded (docs/benchmarks.md). A kernel timed in one
process can therefore be a lucky or an unlucky draw, and so can a whole compare. Here each kernel is
compiled once, exported, and timed in ``processes`` fresh processes (all kernels of a workload
interleaved in each, ``rounds`` rounds); its latency is the median over processes of each process's
median. The draws are not independent of what else a process runs: the same kernel had medians
of 707 and 1124 us in two compares of 9 processes, the second with one library more, and a
random gap before each library and input did not change its draw with randomisation off; so a
fragile kernel's latency here is still conditioned on its company, and the verdict's median over
tuning seeds is what keeps one such kernel from deciding a workload.

Whole models (``bench/model_e2e.py``) are timed the same way, on the Relax VM.

    python bench/process_timing.py SPEC.json      # one child: prints {name: [seconds per round]}
"""

from __future__ import annotations

import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
NUMPY = "numpy"  # the name of the numpy.matmul baseline, timed in the processes of GMM workloads
# The machine's speed, read at the start and the end of each process with ``reference=True``: one
# fixed numpy matmul, the same in every workload and every compare. A shared 2-core machine runs
# 20-35% slower at times (a compare of 2026-12-04); kernels timed interleaved keep their ratios, but
# a loaded machine slows memory-bound and compute-bound kernels unequally, so the summary says so.
REFERENCE = "reference"
THREADS = "threads"  # TVM runtime threads of each process, as [n]
REFERENCE_SIZE = 512
SETTLE_S = 0.5  # a pause after numpy or TVM kernels ran, before the other times: their threads spin-wait


def numpy_matmul_timer(x, y, min_seconds: float = 0.1):
    """Seconds of one ``numpy.matmul(x, y)``, averaged over at least ``min_seconds`` of calls."""
    def timer():
        reps, start = 0, time.perf_counter()
        while True:
            np.matmul(x, y)
            reps += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds:
                return elapsed / reps
    return timer


def reference_timer(readings: int = 5):
    """Seconds of one ``numpy.matmul`` of two fixed :data:`REFERENCE_SIZE` square fp32 matrices: the
    median of ``readings`` averages over 20 ms each (single 100 ms averages read 1.3-1.8 times their
    median in 3 of 108 readings of a quiet compare: blips no kernel's median over rounds would show)."""
    rng = np.random.default_rng(0)
    x, y = (rng.random((REFERENCE_SIZE, REFERENCE_SIZE), dtype=np.float32) for _ in range(2))
    timer = numpy_matmul_timer(x, y, min_seconds=0.02)
    return lambda: statistics.median(timer() for _ in range(readings))


def time_in_processes(workload: str, libraries: dict[str, str], rounds: int, processes: int,
                      with_numpy: bool = False, randomize: bool = True,
                      reference: bool = False) -> dict[str, list[list[float]]]:
    """Time exported kernels of ``workload`` in ``processes`` fresh processes, in turn within each.

    ``libraries`` maps a kernel's name to its exported library. Returns, per name (and
    :data:`NUMPY` if ``with_numpy``), one list of ``rounds`` seconds per process.
    ``randomize=False`` starts the processes with address-space randomisation off (``setarch -R``).
    ``reference=True`` also times :func:`reference_timer` before the kernels' libraries are loaded
    and after their last round: :data:`REFERENCE` holds ``[start, end]`` seconds per process, and
    :data:`THREADS` ``[n]``, the TVM runtime threads each process ran kernels on.
    """
    spec = {"workload": workload, "libraries": libraries, "rounds": rounds, "numpy": with_numpy,
            "reference": reference}
    return _in_processes(spec, workload, processes, randomize)


def time_models_in_processes(name: str, libraries: dict[str, str], inputs: dict[str, np.ndarray], rounds: int,
                             processes: int, randomize: bool = True) -> dict[str, list[list[float]]]:
    """:func:`time_in_processes` for whole models: ``libraries`` are exported Relax executables,
    each run on the Relax VM with ``inputs`` (by parameter, in order); ``name`` names the model
    in errors."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "inputs.npz"
        np.savez(path, **inputs)
        spec = {"inputs": str(path), "input_names": list(inputs), "libraries": libraries, "rounds": rounds}
        return _in_processes(spec, name, processes, randomize)


def _in_processes(spec: dict, name: str, processes: int, randomize: bool) -> dict[str, list[list[float]]]:
    if processes < 1 or spec["rounds"] < 1:
        raise ValueError(f"processes and rounds must be >= 1, got {processes!r} and {spec['rounds']!r}")
    per: dict[str, list[list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spec.json"
        path.write_text(json.dumps(spec))
        command = [sys.executable, str(Path(__file__).resolve()), str(path)]
        if not randomize:
            if shutil.which("setarch") is None:
                raise RuntimeError("randomize=False needs setarch (util-linux) on the PATH")
            command = ["setarch", platform.machine(), "-R", *command]
        for i in range(processes):
            proc = subprocess.run(command, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise RuntimeError(f"timing process {i + 1} of {name} failed with status {proc.returncode}:\n"
                                   + proc.stderr[-3000:])
            for kernel, samples in json.loads(proc.stdout.strip().splitlines()[-1]).items():
                per.setdefault(kernel, []).append(samples)
    return per


def latency(per_process: list[list[float]]) -> float:
    """A kernel's latency from :func:`time_in_processes`: the median over processes of their medians."""
    return statistics.median(statistics.median(samples) for samples in per_process)


def _child(spec_path: str) -> int:
    from ms_droplet.machine import runtime_threads, use_all_cores

    use_all_cores()  # before TVM's thread pool exists: kernels on every core, as tuned
    spec = json.loads(Path(spec_path).read_text())
    reference = reference_timer() if spec.get("reference") else None
    start = reference() if reference else None
    if reference:
        time.sleep(SETTLE_S)

    import tvm

    from ms_droplet.timing import evaluator_timer, interleaved

    timers = {}
    if "inputs" in spec:  # whole models: Relax executables on the VM
        from ms_droplet.model_tuning import vm_timers

        saved = np.load(spec["inputs"])
        inputs = {name: saved[name] for name in spec["input_names"]}
        timers = vm_timers({name: tvm.runtime.load_module(path) for name, path in spec["libraries"].items()}, inputs)
    else:
        sys.path.insert(0, str(HERE))
        from suite import _inputs_for

        from ms_droplet.workloads import get_workload

        arrays, tensors = _inputs_for(get_workload(spec["workload"]).mod["main"], 0)
        for name, path in spec["libraries"].items():
            evaluator = tvm.runtime.load_module(path).time_evaluator("main", tvm.cpu(), number=1, repeat=1,
                                                                     min_repeat_ms=100)
            timers[name] = evaluator_timer(evaluator, *tensors)
        if spec["numpy"]:
            # Timed before the kernels, not among them: numpy's threads and TVM's spin-wait a while after
            # their work, and with TVM on every core a kernel run just after numpy read up to 1.6x slow.
            numpy_timer = numpy_matmul_timer(arrays[0], arrays[1])
            numpy_samples = [numpy_timer() for _ in range(spec["rounds"])]
            time.sleep(SETTLE_S)
    out = interleaved(timers, spec["rounds"])
    if spec.get("numpy"):
        out[NUMPY] = numpy_samples
    if reference:
        time.sleep(SETTLE_S)  # TVM's workers stop spinning before numpy reads the machine's speed
        out[REFERENCE] = [start, reference()]
        out[THREADS] = [runtime_threads()]
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(_child(sys.argv[1]))
