"""Where an archive runs: an embedded Ray on this machine, or a Ray cluster by address.

With no address (``--address`` or ``$RAY_ADDRESS``), :func:`ray_session` starts Ray here with
the CPUs asked and stops it at the end. With one (``ray://HOST:10001`` through Ray Client, or
``auto``/``HOST:6379`` on a node of the cluster), it connects to that cluster and leaves it
running. Either way the workers run the same code as this machine: a local Ray's processes
import it from where this process does (:func:`runtime_env`), a cluster's receive it with the
job (Ray's ``py_modules``); the cluster's nodes need the dependencies
(``pip install 'rcdnet-desktop[cluster]'`` in their image). The model bundle goes through Ray's
object store and is verified on each worker (:mod:`.stages`).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

ADDRESS_ENV = "RAY_ADDRESS"

QUIET_ENV = {"RAY_DEDUP_LOGS": "1", "RAY_DATA_DISABLE_PROGRESS_BARS": "1",
             "RAY_USAGE_STATS_ENABLED": "0", "RAY_BACKEND_LOG_LEVEL": "fatal"}
"""Ray's settings for a run that prints its own progress: Ray Data's own bars off, repeated
worker logs folded, no usage report sent anywhere, and the C++ core's messages left in Ray's
log files rather than on the terminal (an error that stops the run reaches Python as an
exception and is said in words)."""


def package_root() -> Path:
    """The folder that holds the ``rcdnet_desktop`` package."""
    return Path(__file__).resolve().parents[2]


def runtime_env(address: str | None) -> dict:
    """What the workers need besides the installed dependencies: this package's code.

    On a cluster, Ray uploads the package with the job. On this machine, the workers import
    it from where this process does: the local Ray's processes inherit this process's
    ``PYTHONPATH`` (:func:`init_kwargs` puts the package's folder first on it), so they need
    no runtime environment, and the workers Ray starts with the node serve the run at once
    (a runtime environment would have Ray start others for it)."""
    if address:
        return {"py_modules": [str(package_root() / "rcdnet_desktop")]}
    return {}


def init_kwargs(address: str | None, cpus: int | None) -> dict:
    """The arguments of ``ray.init`` for a run: a cluster at ``address``, else a local Ray
    with ``cpus`` CPUs (None: every core of this machine)."""
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    if not address:
        # Ray starts its workers 15 steps nicer than itself; on this machine they are the
        # command's own work and keep its priority (``nice rcdnet archive`` still applies).
        os.environ.setdefault("RAY_worker_niceness", "0")
        paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
        if str(package_root()) not in paths:
            os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, (str(package_root()),
                                                                     *paths)))
    common = {"runtime_env": runtime_env(address), "log_to_driver": False,
              "logging_level": logging.ERROR, "configure_logging": True}
    if address:
        return {"address": address, **common}
    return {"address": "local", "num_cpus": cpus, "include_dashboard": False, **common}


@contextlib.contextmanager
def own_signals() -> Iterator[None]:
    """Keep this process's SIGINT and SIGTERM handlers across what is done inside.

    ``ray.init`` replaces the SIGTERM handler with one that exits at once, and leaves it
    after ``ray.shutdown``: the command would then stop without writing its last shard or
    saying how far it got."""
    import signal
    import threading

    main = threading.current_thread() is threading.main_thread()
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)} \
        if main else {}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            if handler is not None:
                signal.signal(sig, handler)


def start(address: str | None, cpus: int | None) -> None:
    """``ray.init`` for a run (:func:`init_kwargs`), this process's signal handlers kept."""
    import ray

    with own_signals():
        ray.init(**init_kwargs(address, cpus))
    quiet_data()


def stop() -> None:
    """``ray.shutdown``, this process's signal handlers kept."""
    import ray

    with own_signals():
        ray.shutdown()


def quiet_data() -> None:
    """Ray Data prints nothing of its own: the run's progress is :mod:`.progress`'s."""
    from ray.data import DataContext

    ctx = DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    ctx.verbose_stats_logs = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)


@contextlib.contextmanager
def ray_session(address: str | None, cpus: int | None) -> Iterator[str]:
    """Ray for the time of a run; yields where it runs, in words.

    A Ray already started in this process (by a test, or a notebook) is used as it is and
    left running."""
    import ray

    address = address or os.environ.get(ADDRESS_ENV) or None
    if ray.is_initialized():
        quiet_data()
        yield "the Ray session already running in this process"
        return
    start(address, cpus)
    try:
        cores = int(ray.cluster_resources().get("CPU", 0))
        yield (f"the Ray cluster at {address} ({cores} CPUs)" if address
               else f"a local Ray on this machine ({cores} CPUs)")
    finally:
        stop()


__all__: Sequence[str] = ("init_kwargs", "own_signals", "quiet_data", "ray_session",
                          "runtime_env", "start", "stop")
