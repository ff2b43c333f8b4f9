"""Runners for measuring candidates: on this machine, or on devices behind a TVM RPC tracker.

Start a tracker and servers with TVM's own tools, then point :func:`rpc_runner` at the tracker::

    python -m tvm.exec.rpc_tracker --host 0.0.0.0 --port 9190
    python -m tvm.exec.rpc_server --tracker HOST:9190 --key my-board   # on every device
"""

from __future__ import annotations

import ipaddress
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tvm.ir.utils import derived_object
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.meta_schedule.runner import PyRunner, PyRunnerFuture, RunnerResult

from . import checks
from .interleaved import InterleavedRunner, interleaved_runner
from .machine import use_all_cores
from .trace import run_samples

__all__ = ["InterleavedRunner", "LocalRPCCluster", "evaluator_config", "interleaved_runner", "local_runner",
           "parse_tracker", "rpc_runner", "validated"]

# Enough samples per candidate for the descent's t-test, each at least 50 ms of repeated runs.
DEFAULT_REPEAT = 3
MIN_REPEAT_MS = 50
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


def evaluator_config(repeat: int = DEFAULT_REPEAT) -> ms.runner.EvaluatorConfig:
    """The timing settings every runner of this package uses."""
    checks.integer("runner", "repeat", repeat, 1)
    return ms.runner.EvaluatorConfig(number=1, repeat=repeat, min_repeat_ms=MIN_REPEAT_MS)


def local_runner(repeat: int = DEFAULT_REPEAT, validate: bool = True) -> ms.runner.Runner:
    """Measure on this machine, ``repeat`` samples per candidate, with kernels on every physical core
    (:func:`ms_droplet.machine.use_all_cores`); results checked by :func:`validated` unless
    ``validate=False`` (MetaSchedule's ``LocalRunner`` as it is, as the bench gives every strategy)."""
    runner = ms.runner.LocalRunner(evaluator_config=evaluator_config(repeat), initializer=use_all_cores)
    return validated(runner) if validate else runner


class _ValidatedRunner(PyRunner):
    def __init__(self, inner: ms.runner.Runner) -> None:
        self.inner = inner

    def run(self, runner_inputs):
        return [_ValidatedFuture(future) for future in self.inner.run(runner_inputs)]


class _ValidatedFutureImpl(PyRunnerFuture):
    def __init__(self, inner) -> None:
        self.inner = inner

    def done(self) -> bool:
        return self.inner.done()

    def result(self) -> RunnerResult:
        result = self.inner.result()
        if result.error_msg is None and run_samples(result.run_secs) is None:
            secs = [float(getattr(x, "value", x)) for x in (result.run_secs or [])]
            return RunnerResult(None, f"ms_droplet: the runner returned unusable run times {secs}")
        return result


_ValidatedFuture = derived_object(_ValidatedFutureImpl)
_Validated = derived_object(_ValidatedRunner)


def validated(runner: ms.runner.Runner) -> ms.runner.Runner:
    """Wrap any runner so that results without usable run times become error results.

    MetaSchedule's task scheduler aborts the whole run on a result with no error and no run
    time (``Check failed: (!run_secs.empty())``); a custom or remote runner can return that,
    or negative, zero, infinite or 1e10 (MetaSchedule's failure marker) times. Wrapped, such a
    candidate is recorded as failed with a message naming the times, and tuning goes on.
    """
    return _Validated(runner)


def parse_tracker(text: str) -> tuple[str, int]:
    """``"HOST:PORT"`` -> (host, port), or ``ValueError`` quoting the text."""
    host, sep, port = str(text).rpartition(":")
    host = host.strip("[]")
    valid_host = bool(host) and (_HOSTNAME.match(host) is not None or _is_ip(host))
    if not sep or not valid_host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected the tracker as HOST:PORT (for example 127.0.0.1:9190), got {text!r}")
    return host, int(port)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def rpc_runner(
    tracker: str,
    key: str,
    repeat: int = DEFAULT_REPEAT,
    max_workers: int | None = None,
    session_timeout_sec: int = 60,
) -> ms.runner.Runner:
    """Measure on the RPC servers registered at ``tracker`` (``HOST:PORT``) under ``key``.

    ``max_workers`` candidates are measured at once, each on its own server; by default one per
    server registered for ``key`` now. Raises ``ValueError`` with a one-line reason when the
    tracker cannot be reached or has no server for ``key``.
    """
    host, port = parse_tracker(tracker)
    if not key or not isinstance(key, str):
        raise ValueError(f"the RPC key must be a non-empty string, got {key!r}")
    checks.integer("rpc_runner", "max_workers", max_workers, 1, optional=True)
    try:  # TVM's own connect retries for a minute; a refused or unknown tracker should fail at once
        socket.create_connection((host, port), timeout=10).close()
    except OSError as err:
        raise ValueError(f"cannot reach the RPC tracker at {host}:{port}: {err.strerror or err}") from None
    config = ms.runner.RPCConfig(
        tracker_host=host, tracker_port=port, tracker_key=key, session_timeout_sec=session_timeout_sec
    )
    try:
        servers = config.count_num_servers(allow_missing=True)
    except (ValueError, OSError) as err:
        reason = str(err).splitlines()[0]
        raise ValueError(f"cannot reach the RPC tracker at {host}:{port}: {reason}") from None
    if servers == 0:
        raise ValueError(
            f"the RPC tracker at {host}:{port} has no server with key {key!r}; start one with "
            f"'python -m tvm.exec.rpc_server --tracker {host}:{port} --key {key}'"
        )
    return validated(
        ms.runner.RPCRunner(
            rpc_config=config, evaluator_config=evaluator_config(repeat), max_workers=max_workers or servers
        )
    )


class LocalRPCCluster:
    """A TVM RPC tracker and servers on 127.0.0.1, as child processes: RPC tuning on one machine.

    For trying the RPC path and for tests; on real boards start ``tvm.exec.rpc_server`` there.
    Each process runs in its own process group and logs to ``log_dir``. Use as a context
    manager, so that every process it started is stopped::

        with LocalRPCCluster(log_dir, num_servers=2, key="cpu") as cluster:
            runner = rpc_runner(cluster.tracker, "cpu")
    """

    def __init__(self, log_dir: str | Path, num_servers: int = 2, key: str = "local", timeout: float = 120) -> None:
        checks.integer("LocalRPCCluster", "num_servers", num_servers, 1)
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.key = key
        self.port = _free_port()
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}
        try:
            self._start("tracker", ["tvm.exec.rpc_tracker", "--host", "127.0.0.1", "--port", str(self.port),
                                    "--port-end", str(self.port + 1)])
            for i in range(num_servers):
                self.add_server(f"server-{i}")
            self.wait_for_servers(num_servers, timeout)
        except BaseException:
            self.close()
            raise

    @property
    def tracker(self) -> str:
        """``HOST:PORT`` of the tracker, for :func:`rpc_runner` or ``ms-droplet --rpc``."""
        return f"127.0.0.1:{self.port}"

    def _start(self, name: str, args: list[str]) -> None:
        self.logs[name] = self.log_dir / f"{name}.log"
        with self.logs[name].open("w") as log:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", *args], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def add_server(self, name: str) -> None:
        """Start one more server registering with the tracker under ``key``."""
        port = _free_port()
        self._start(name, ["tvm.exec.rpc_server", "--host", "127.0.0.1", "--port", str(port),
                           "--port-end", str(port + 1), "--tracker", self.tracker, "--key", self.key])

    def wait_for_servers(self, count: int, timeout: float = 120) -> None:
        """Block until ``count`` servers are registered; ``TimeoutError`` with their logs if not."""
        config = ms.runner.RPCConfig("127.0.0.1", self.port, self.key, session_timeout_sec=10)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if config.count_num_servers() == count:
                    return
            except (ValueError, OSError):
                pass
            time.sleep(0.5)
        raise TimeoutError(f"{count} RPC servers did not register within {timeout} s:\n{self.log_text()}")

    def served(self, name: str) -> int:
        """Modules server ``name`` has loaded: one per candidate it measured."""
        return self.logs[name].read_text().count("load_module")

    def stop(self, name: str) -> None:
        """Kill one process (and its session children) at once, as a crashing board would go."""
        proc = self.procs[name]
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def close(self) -> None:
        """Stop every process this cluster started."""
        for name in list(self.procs):
            self.stop(name)

    def log_text(self, tail: int = 2000) -> str:
        return "\n".join(f"--- {n}\n{p.read_text()[-tail:]}" for n, p in self.logs.items())

    def __enter__(self) -> LocalRPCCluster:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
