"""ms-droplet report: the tuning curve of a MetaSchedule JSON database."""

from __future__ import annotations

import pytest
from conftest import make_context, matmul_mod
from tvm.s_tir import meta_schedule as ms

from ms_droplet.cli import main
from ms_droplet.report import read_curve, workload_labels


@pytest.fixture
def work_dir(tmp_path, target):
    """A real JSONDatabase with four records: 3.0, failed, 2.0, 2.5 microseconds."""
    mod = matmul_mod()
    db = ms.database.JSONDatabase(work_dir=str(tmp_path))
    wl = db.commit_workload(mod)
    ctx = make_context(mod, target, "replay-trace")
    ctx.pre_tuning(4, 4, ctx.generate_design_space(), None, None)
    cands = ctx.generate_measure_candidates()
    for cand, secs in zip(cands, ([3e-6, 3e-6], [1e10], [2e-6, 2e-6], [2.5e-6]), strict=True):
        db.commit_tuning_record(ms.database.TuningRecord(cand.sch.trace, wl, secs, target, cand.args_info))
    return tmp_path


def test_read_curve_follows_the_best_so_far(work_dir):
    curve = read_curve(work_dir)
    assert list(curve.best) == [0]
    assert [round(v * 1e6, 6) for v in curve.best[0]] == [3.0, 3.0, 2.0, 2.0]
    assert curve.failures == {0: 1}


def test_report_command_writes_a_png(work_dir, capsys):
    out = work_dir / "curve.png"
    assert main(["report", str(work_dir), "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "4 records (1 failed), best 2.00 us" in capsys.readouterr().out


def test_truncated_database_names_file_and_line(work_dir):
    path = work_dir / "database_tuning_record.json"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines[:2], lines[2][: len(lines[2]) // 2], lines[3]]) + "\n")
    with pytest.raises(ValueError, match=r"database_tuning_record.json:3: not a MetaSchedule tuning record"):
        read_curve(work_dir)
    with pytest.raises(SystemExit) as exit_info:
        main(["report", str(work_dir)])
    assert exit_info.value.code == 2


def test_missing_database_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no MetaSchedule database in"):
        read_curve(tmp_path)


def test_legend_names_the_workloads(work_dir, tmp_path, target):
    # One workload: the work dir's name. Several: the blocks each computes.
    assert workload_labels(work_dir) == {0: work_dir.name}
    import tvm
    from tvm import te
    from tvm.s_tir.meta_schedule.testing import te_workload

    (tmp_path / "two").mkdir()
    db = ms.database.JSONDatabase(work_dir=str(tmp_path / "two"))
    db.commit_workload(matmul_mod())
    db.commit_workload(tvm.IRModule({"main": te.create_prim_func(te_workload.conv2d_nchw(1, 8, 8, 8, 8, 3, 1, 1, 1))}))
    labels = workload_labels(tmp_path / "two")
    assert labels[0] == "C" and labels[1] == "pad_temp+conv2d_nchw", labels
