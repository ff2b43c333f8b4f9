"""Measuring through TVM's RPC tracker: a tracker and two servers on 127.0.0.1, started here."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from conftest import matmul_mod
from tvm.s_tir import meta_schedule as ms

from ms_droplet.cli import main
from ms_droplet.runners import LocalRPCCluster, rpc_runner

KEY = "ms-droplet-test"
pytestmark = pytest.mark.slow


@pytest.fixture
def cluster(tmp_path):
    with LocalRPCCluster(tmp_path / "rpc-logs", num_servers=2, key=KEY) as c:
        yield c
    assert all(p.poll() is not None for p in c.procs.values()), "a process the test started is still running"


def _records(work_dir: Path) -> list[str]:
    path = work_dir / "database_tuning_record.json"
    return path.read_text().splitlines() if path.exists() else []


def test_cli_tunes_on_two_rpc_servers_in_parallel(tmp_path, cluster, capsys):
    work_dir = tmp_path / "wd"
    code = main(
        ["tune", "--workload", "matmul-small", "--trials", "12", "--per-iter", "6", "--cost-model", "random",
         "--repeat", "2", "--rpc", cluster.tracker, "--rpc-key", KEY, "--work-dir", str(work_dir)]
    )
    out = capsys.readouterr().out
    assert code == 0, out + cluster.log_text()
    assert f"measuring on RPC 127.0.0.1:{cluster.port}" in out
    assert "(0 failed)" in out
    records = _records(work_dir)
    assert len(records) == 12
    # Every record was measured by one of the two servers, and both took part.
    a, b = cluster.served("server-0"), cluster.served("server-1")
    assert a + b == 12, cluster.log_text()
    assert a > 0 and b > 0, cluster.log_text()


def test_tuning_survives_a_server_stopped_midway_and_keeps_its_records(tmp_path, cluster, target, builder):
    work_dir = tmp_path / "wd"
    runner = rpc_runner(cluster.tracker, KEY, repeat=2, session_timeout_sec=20)
    before_kill: list[str] = []

    def kill_server_0_after_first_records() -> None:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and len(_records(work_dir)) < 4:
            time.sleep(0.2)
        before_kill.extend(_records(work_dir))
        cluster.stop("server-0")

    killer = threading.Thread(target=kill_server_0_after_first_records, daemon=True)
    killer.start()
    database = ms.tune_tir(
        mod=matmul_mod(32), target=target, work_dir=str(work_dir), max_trials_global=16,
        num_trials_per_iter=4, strategy="droplet", builder=builder, runner=runner, cost_model="random", seed=11,
    )
    killer.join(timeout=60)
    assert cluster.procs["server-0"].poll() is not None, "server-0 was not stopped during tuning"
    after = _records(work_dir)
    assert len(before_kill) >= 4
    assert before_kill == after[: len(before_kill)], "a record measured before the stop was lost or changed"
    assert len(after) == 16 == len(database.get_all_tuning_records())
    # Candidates after the stop were measured by the surviving server.
    ok = [r for r in after[len(before_kill):] if max(json.loads(r)[1][1] or [1e10]) < 1e9]
    assert ok, cluster.log_text()
    assert cluster.served("server-1") > 0
