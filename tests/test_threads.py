"""The package's runners run kernels on every physical core, whatever TVM's runtime would pick."""

from __future__ import annotations

import os
import platform

import pytest
from tvm.s_tir import meta_schedule as ms

from ms_droplet.machine import THREAD_VARIABLES, configured_threads, runtime_threads
from ms_droplet.runners import interleaved_runner, local_runner
from ms_droplet.workloads import physical_cores


def _tvm_default_threads() -> int:
    """TVM's own rule without TVM_NUM_THREADS: half the logical CPUs on x86-64 (to skip hyper-threads)."""
    cpus = os.cpu_count() or 1
    return max(1, cpus // 2) if platform.machine() in ("x86_64", "AMD64") else cpus


def test_runner_workers_size_tvms_thread_pool_at_the_physical_cores(monkeypatch):
    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    # the worker processes where candidates are timed, asked how many threads a kernel runs on
    assert local_runner()._inst.inner._inst.pool.submit(runtime_threads).result() == physical_cores()
    assert local_runner(validate=False)._inst.pool.submit(runtime_threads).result() == physical_cores()  # the bench's
    worker = interleaved_runner()._inst.worker
    worker.send(runtime_threads)
    assert worker.recv() == physical_cores()
    # MetaSchedule's LocalRunner as it comes: TVM's rule, one thread on a 2-core machine without hyper-threads
    assert ms.runner.LocalRunner()._inst.pool.submit(runtime_threads).result() == _tvm_default_threads()


def test_a_users_thread_count_stands(monkeypatch):
    monkeypatch.setenv("TVM_NUM_THREADS", "1")
    assert local_runner()._inst.inner._inst.pool.submit(runtime_threads).result() == 1


def test_configured_threads_reads_the_variables_tvm_reads(monkeypatch):
    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert configured_threads() is None
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert configured_threads() == 3
    monkeypatch.setenv("TVM_NUM_THREADS", "2")  # TVM's own variable comes first
    assert configured_threads() == 2
    monkeypatch.setenv("TVM_NUM_THREADS", "two")
    with pytest.raises(ValueError, match="TVM_NUM_THREADS='two'"):
        configured_threads()
