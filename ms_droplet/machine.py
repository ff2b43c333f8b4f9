"""What machine a measurement was taken on: recorded beside every bench run, summary and landscape,
because kernels tuned on one CPU can be 40% off on another."""

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
