"""Workloads and targets the command line tool can name."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import tvm
from tvm import te
from tvm.ir import IRModule
from tvm.s_tir.meta_schedule.testing import te_workload
from tvm.target import Target

#: The built-in workloads: name -> (description, TE builder).
BUILTIN = {
    "matmul": ("float32 matmul 256x256x256", lambda: te_workload.matmul(256, 256, 256)),
    "matmul-small": ("float32 matmul 64x64x64", lambda: te_workload.matmul(64, 64, 64)),
    "conv2d": (
        "float32 conv2d NHWC 1x28x28x64 -> 64, 3x3, stride 1, pad 1",
        lambda: te_workload.conv2d_nhwc(1, 28, 28, 64, 64, 3, 1, 1),
    ),
}
DEFAULT_WORKLOAD = "matmul"


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    mod: IRModule


def workload_names() -> list[str]:
    """Every name :func:`get_workload` takes: the built-ins, then ``KIND-INDEX`` for each test workload."""
    names = list(BUILTIN)
    for kind, (_, shapes) in te_workload.CONFIGS.items():
        names += [f"{kind}-{i}" for i in range(len(shapes))]
    return names


def get_workload(name: str) -> Workload:
    """A built-in workload, or MetaSchedule's test workload ``KIND-INDEX`` (``GMM-2``, ``C2D-1``)."""
    if name in BUILTIN:
        description, make = BUILTIN[name]
        return Workload(name, description, IRModule({"main": te.create_prim_func(make())}))
    kind, _, index = name.rpartition("-")
    configs = te_workload.CONFIGS.get(kind)
    if configs is None or not index.isdigit() or int(index) >= len(configs[1]):
        raise ValueError(
            f"unknown workload {name!r}; choose a built-in ({', '.join(BUILTIN)}) or KIND-INDEX with "
            f"KIND in {', '.join(te_workload.CONFIGS)} and INDEX 0-3 (for example GMM-2, C2D-1)"
        )
    func, shapes = configs
    shape = shapes[int(index)]
    mod = IRModule({"main": te_workload.create_te_workload(kind, int(index))})
    return Workload(name, f"{func.__name__}{shape}", mod)


def physical_cores() -> int:
    """Physical cores of this machine (logical ones when psutil cannot tell)."""
    import psutil

    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


def host_target() -> Target:
    """The host CPU with ``mcpu`` and ``num-cores`` set: both change tuned kernels a lot."""
    cpu = tvm.target.codegen.llvm_get_system_cpu()
    return Target({"kind": "llvm", "mcpu": cpu, "num-cores": physical_cores()})


def parse_target(text: str | None) -> Target:
    """``None``/``"host"``: :func:`host_target`; ``"llvm"``: the host too; else a JSON dict.

    An llvm target missing ``num-cores`` or ``mcpu`` gets the host's: MetaSchedule needs the
    first and tuned kernels depend on the second.
    """
    if text is None or text in ("host", "llvm"):
        return host_target()
    try:
        config = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(
            f"target {text!r} is neither 'host', 'llvm' nor a JSON dict such as "
            '\'{"kind": "llvm", "mcpu": "znver3", "num-cores": 2}\' '
            f"({err.msg})"
        ) from None
    if not isinstance(config, dict) or "kind" not in config:
        raise ValueError(f"target {text!r} must be a JSON dict with a 'kind'")
    if config["kind"] == "llvm":
        config.setdefault("num-cores", physical_cores())
        config.setdefault("mcpu", tvm.target.codegen.llvm_get_system_cpu())
    try:
        return Target(config)
    except Exception as err:  # TVM raises several types for a bad target
        raise ValueError(f"target {text!r} is not valid: {str(err).strip().splitlines()[-1]}") from None


def flop_count(mod: IRModule) -> float:
    """Floating point operations of one run of ``mod`` (MetaSchedule's own estimate)."""
    from tvm.s_tir.analysis import estimate_tir_flops

    return float(estimate_tir_flops(mod))
