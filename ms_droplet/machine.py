"""What machine a measurement was taken on: recorded beside every bench run, summary and landscape,
because kernels tuned on one CPU can be 40% off on another; and how many threads TVM's runtime
runs kernels on.

TVM's runtime sizes its thread pool, unless ``TVM_NUM_THREADS`` (or ``OMP_NUM_THREADS``) says
otherwise, at half the logical CPUs on x86-64, to skip hyper-threads. On a machine without them (a
2-vCPU cloud VM that reports one thread per core) kernels then run on half the cores the target's
``num-cores`` was tuned for: on the bench's 2-core Xeon every kernel ran on one thread, and the
same kernels ran 1.9-4x faster on two. :func:`use_all_cores` sets the variable to the physical
cores before the pool exists; the package's runners call it in their worker processes.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any


def cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (empty where it cannot be read)."""
    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip() not in info:
                info[key.strip()] = value.strip()
    except OSError:
        pass
    return info


THREADS_ENV = "TVM_NUM_THREADS"
THREAD_VARIABLES = (THREADS_ENV, "OMP_NUM_THREADS")  # what TVM's runtime reads, in its order


def use_all_cores() -> None:
    """Size TVM's runtime thread pool of this process at the physical cores, unless
    ``TVM_NUM_THREADS`` or ``OMP_NUM_THREADS`` is set (the user's choice stands). Takes effect only
    if called before the process first runs a TVM kernel (the pool is made once, on first use)."""
    if not any(name in os.environ for name in THREAD_VARIABLES):
        from .workloads import physical_cores

        os.environ[THREADS_ENV] = str(physical_cores())


def configured_threads() -> int | None:
    """Threads the environment asks TVM's runtime for (``TVM_NUM_THREADS``, else
    ``OMP_NUM_THREADS``, as TVM reads them), or None where neither is set."""
    for name in THREAD_VARIABLES:
        value = os.environ.get(name, "").strip()
        if value:
            if not value.isdigit():
                raise ValueError(f"{name}={value!r} is not a thread count")
            return int(value)
    return None


def runtime_threads() -> int:
    """Threads TVM's runtime runs a parallel kernel on in this process (makes the pool if need be)."""
    import tvm

    return int(tvm.get_global_func("runtime.NumThreads")())


def machine_info() -> dict[str, Any]:
    """CPU model, LLVM's name for it, the tuning target, core count, versions and the date."""
    import tvm

    from .workloads import host_target

    return {
        "cpu": cpuinfo().get("model name", platform.processor()),
        "llvm_cpu": tvm.target.codegen.llvm_get_system_cpu(),
        "logical_cores": os.cpu_count(), "target": str(host_target()),
        "tvm": tvm.__version__, "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
