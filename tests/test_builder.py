"""ms_droplet's fast builder: a build that runs away fails at the builder's timeout."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tvm.s_tir import Schedule, Trace
from tvm.s_tir import meta_schedule as ms
from tvm.target import Target

from ms_droplet.builder import DEFAULT_BUILD_TIMEOUT, fast_builder
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
    start = time.perf_counter()
    slow, fast = fast_builder(timeout_sec=5).build(inputs)
    elapsed = time.perf_counter() - start
    assert "Timeout, killed after 5.0 seconds" in str(slow.error_msg)
    assert fast.error_msg is None and Path(fast.artifact_path).exists()
    # cut off at 5 s (plus starting the workers), not at LocalBuilder's 30 s or the build's minutes
    assert elapsed < 30, elapsed


def test_fast_builder_times_out_by_default_at_ten_seconds():
    assert DEFAULT_BUILD_TIMEOUT == 10.0
    assert fast_builder().timeout_sec == DEFAULT_BUILD_TIMEOUT
