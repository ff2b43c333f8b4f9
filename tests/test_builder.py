"""ms_droplet's fast builder: kept workers, and a build that runs away fails at the builder's timeout."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from conftest import matmul_mod
from tvm.s_tir import Schedule, Trace
from tvm.s_tir import meta_schedule as ms
from tvm.target import Target

from ms_droplet.builder import DEFAULT_BUILD_TIMEOUT, KeptPoolBuilder, fast_builder
from ms_droplet.workloads import get_workload

# A softmax schedule whose LLVM build ran past LocalBuilder's 30 s on the bench (over 120 s
# alone), and the same schedule with a smaller unroll step, which builds in a fraction of a
# second. Built for the CPU it was seen on, so that the test does not depend on this host's.
RUNAWAY = Path(__file__).parent / "data" / "sfm1_slow_build.json"
ZEN5 = Target({"kind": "llvm", "mcpu": "znver5", "num-cores": 2})


def test_a_runaway_build_fails_at_the_timeout_while_its_twin_builds():
    data = json.loads(RUNAWAY.read_text())
    mod = get_workload(data["workload"]).mod
    inputs = []
    for key in ("slow", "fast"):
        sch = Schedule(mod)
        Trace.apply_json_to_schedule(data[key], sch)
        inputs.append(ms.builder.BuilderInput(sch.mod, ZEN5))
    builder = fast_builder(max_workers=1, timeout_sec=5)  # one worker: the build after the timeout needs its replacement
    start = time.perf_counter()
    slow, fast = builder.build(inputs)
    elapsed = time.perf_counter() - start
    assert "Timeout, killed after 5.0 seconds" in str(slow.error_msg)
    assert fast.error_msg is None and Path(fast.artifact_path).exists()
    # cut off at 5 s (plus starting the workers), not at LocalBuilder's 30 s or the build's minutes
    assert elapsed < 30, elapsed
    # the killed worker is replaced: the same builder goes on building
    (again,) = builder.build(inputs[1:])
    assert again.error_msg is None and Path(again.artifact_path).exists()
    builder.close()


def test_fast_builder_times_out_by_default_at_ten_seconds():
    assert DEFAULT_BUILD_TIMEOUT == 10.0
    assert fast_builder().timeout_sec == DEFAULT_BUILD_TIMEOUT


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"max_workers": 0}, "builder: max_workers must be an integer >= 1 or None, got 0"),
    ({"max_workers": 1.5}, "builder: max_workers must be an integer >= 1 or None, got 1.5"),
    ({"timeout_sec": -1}, "builder: timeout_sec must be a number > 0, got -1"),
    ({"timeout_sec": True}, "builder: timeout_sec must be a number > 0, got True"),
    ({"timeout_sec": float("nan")}, "builder: timeout_sec must be a number > 0, got nan"),
    ({"max_uses": 0}, "builder: max_uses must be an integer >= 1, got 0"),
])
def test_bad_builder_settings_are_named(kwargs, message):
    make = KeptPoolBuilder if "max_uses" in kwargs else fast_builder
    with pytest.raises(ValueError, match=re.escape(message)):
        make(**kwargs)


def _worker_pids(builder) -> set[int]:
    return {w._proc.pid for w in builder._pool._worker_map.values() if w._proc is not None}


def _alive(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


def test_workers_outlive_a_batch_and_are_replaced_after_max_uses(target):
    one = [ms.builder.BuilderInput(matmul_mod(16), target)]
    builder = KeptPoolBuilder(max_workers=1, max_uses=2)
    first = builder.build(one)
    pids = _worker_pids(builder)
    second = builder.build(one)
    assert _worker_pids(builder) == pids  # the second batch started no worker
    third = builder.build(one)  # the worker's third build: a fresh worker
    assert _worker_pids(builder).isdisjoint(pids)
    for result in first + second + third:
        assert result.error_msg is None and Path(result.artifact_path).exists()
    last = _worker_pids(builder)
    builder.close()
    time.sleep(0.5)
    assert not any(_alive(pid) for pid in last)
    (after,) = builder.build(one)  # a closed builder starts new workers
    assert after.error_msg is None
    builder.close()
