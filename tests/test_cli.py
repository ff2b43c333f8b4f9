"""The ms-droplet command line: bad input, listing, and one real (tiny) tuning run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ms_droplet.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ms_droplet.cli", *args], capture_output=True, text=True, timeout=300, check=False
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["tune", "--trials", "0"], "'0'"),
        (["tune", "--trials", "many"], "'many'"),
        (["tune", "--per-iter", "-4"], "'-4'"),
        (["tune", "--seed", "-1"], "'-1'"),
        (["tune", "--strategy", "storm"], "'storm'"),
        (["tune", "--cost-model", "gbm"], "'gbm'"),
        (["tune", "--workload", "GMM-9"], "'GMM-9'"),
        (["tune", "--workload", "nope"], "'nope'"),
        (["tune", "--target", "llvm -num-cores 2"], "'llvm -num-cores 2'"),
        (["tune", "--target", '{"kind": "warp-drive"}'], "warp-drive"),
        (["tune", "--work-dir", "/proc/ms-droplet-cannot-write"], "/proc/ms-droplet-cannot-write"),
        (["tune", "--bogus"], "--bogus"),
        (["launch"], "'launch'"),
        (["tune", "--rpc", "localhost"], "'localhost'"),
        (["tune", "--rpc", "127.0.0.1:70000", "--rpc-key", "k"], "'127.0.0.1:70000'"),
        (["tune", "--rpc", "127.0.0.1:9190"], "--rpc-key"),
        (["tune", "--rpc-key", "board"], "--rpc HOST:PORT"),
        (["tune", "--rpc", "127.0.0.1:1", "--rpc-key", "board"], "127.0.0.1:1"),
        (["tune", "--rpc-workers", "0"], "'0'"),
        (["tune", "--build-timeout", "0"], "'0'"),
        (["tune-model", "cnn", "--build-timeout", "soon"], "'soon'"),
        (["tune-model", "missing.onnx"], "'missing.onnx'"),
        (["tune-model", "resnet"], "'resnet'"),
        (["tune-model", "cnn", "--input-shape", "x:1,a"], "'x:1,a'"),
        (["tune-model", "cnn", "--input-shape", "x:1,3"], "'cnn'"),
        (["tune-model", "cnn", "--out", "/nonexistent-dir/cnn.so"], "'/nonexistent-dir/cnn.so'"),
        (["tune-model", "cnn", "--rounds", "0"], "'0'"),
        (["tune", "--explore", "storm"], "'storm'"),
        (["tune", "--strategy", "evolutionary", "--explore", "replay"], "'evolutionary'"),
        (["tune", "--explore", "evolutionary", "--cost-model", "none"], "--cost-model none"),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(args, needle, capsys):
    # In process (a subprocess each would cost seconds of imports); the exit status and the
    # absence of a traceback in a real process are checked by the tests below.
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert needle in lines[0]


@pytest.mark.parametrize(
    "args", [["tune", "--trials", "0"], ["tune", "--workload", "nope"], ["tune-model", "missing.onnx"]]
)
def test_bad_input_in_a_real_process_exits_2_without_traceback(args):
    proc = run_cli(*args)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "Traceback" not in proc.stderr


def test_tune_model_rejects_a_file_that_is_not_onnx(tmp_path):
    bogus = tmp_path / "model.onnx"
    bogus.write_bytes(b"\x00not a protobuf\xff" * 10)
    proc = run_cli("tune-model", str(bogus))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and str(bogus) in proc.stderr
    assert "Traceback" not in proc.stderr


def test_workloads_lists_builtins_and_test_workloads(capsys):
    assert main(["workloads"]) == 0
    names = capsys.readouterr().out.split()
    assert names[0] == "matmul"
    assert {"GMM-2", "C2D-1", "SFM-1"} <= set(names)


@pytest.mark.slow
def test_tune_prints_progress_and_summary(tmp_path, capsys):
    work_dir = tmp_path / "wd"
    code = main(
        ["tune", "--workload", "matmul-small", "--trials", "8", "--per-iter", "4", "--cost-model", "random",
         "--repeat", "2", "--work-dir", str(work_dir), "--seed", "3"]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "trials     8/8" in out
    for label in ("best latency", "throughput", "trials", "wall time", "database"):
        assert label in out
    records = (work_dir / "database_tuning_record.json").read_text().splitlines()
    assert len(records) == 8
    assert all(json.loads(line) for line in records)
