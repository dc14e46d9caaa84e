"""Where tasks run: in this process, in local worker processes (joblib), or on a Dask cluster.

The one executor layer of dfalens, below every package: sweeps (:mod:`dfalens.sweeps`) run their cells
through it and the timeline (:mod:`dfalens.timeline`) its blocks of checkpoints. Every executor maps a
picklable function over a list of items and yields results as they finish (in any order; tagged with
their position by :meth:`Executor.map_indexed`). Each task runs torch with one thread, so a task computes
the same numbers wherever it runs: on a few cores, parallel processes beat parallel threads for tiny
networks, and one thread keeps results independent of the machine's core count.

``make_executor`` takes the same strings as ``dfalens sweep --executor``:

- ``"local"``: ``jobs`` worker processes through joblib's loky backend (in this process when ``jobs`` is 1);
- ``"local-dask"``: a Dask ``LocalCluster`` with ``jobs`` single-threaded workers;
- ``"dask://HOST:PORT"`` (or ``tcp://HOST:PORT``): an existing Dask scheduler, reached within a short
  timeout; its workers need dfalens installed.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import struct
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from types import TracebackType
from typing import Any, TypeVar

from dfalens.errors import ConfigError

__all__ = [
    "one_thread",
    "Executor",
    "SerialExecutor",
    "JoblibExecutor",
    "DaskExecutor",
    "make_executor",
    "default_jobs",
]

T = TypeVar("T")
R = TypeVar("R")

_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
_ADDRESS = re.compile(r"^(?:dask|tcp)://(?P<host>[^:/\s]+|\[[0-9a-fA-F:]+\]):(?P<port>\d{1,5})/?$")


def default_jobs() -> int:
    """Number of worker processes when none is given: the CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


class one_thread:
    """Context manager: one torch and one BLAS thread while active (restored afterwards).

    On a small machine shared with other work, several threads per process make tiny products many times
    slower (they spin waiting for each other); parallelism comes from processes instead.
    """

    def __enter__(self) -> None:
        import torch
        from threadpoolctl import threadpool_limits

        self.before = torch.get_num_threads()
        torch.set_num_threads(1)
        self.limiter = threadpool_limits(1)

    def __exit__(self, *exc: object) -> None:
        import torch

        torch.set_num_threads(self.before)
        self.limiter.restore_original_limits()


def _single_threaded(fn: Callable[[T], R], item: T) -> R:
    """Run one task with torch limited to one thread (restored afterwards when run in-process).

    When torch is not loaded yet (a fresh worker), the thread environment variables are set instead, so
    the task's own ``import torch`` starts with one thread and tasks without torch start fast.
    """
    torch = sys.modules.get("torch")
    if torch is None:
        for name in _THREAD_VARS:
            os.environ[name] = "1"
        return fn(item)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn(item)
    finally:
        torch.set_num_threads(before)


def _indexed(fn: Callable[[T], R], item: tuple[int, T]) -> tuple[int, R]:
    return item[0], fn(item[1])


class Executor(ABC):
    """Runs sweep tasks; use as a context manager so workers and clusters are shut down.

    Attributes
    ----------
    name : str
        A short description for progress messages (``"local (2 processes)"``).
    jobs : int
        How many tasks run at once (for a remote cluster: its thread count when connected).
    """

    name: str = "executor"
    jobs: int = 1

    @abstractmethod
    def map_unordered(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[R]:
        """Yield ``fn(item)`` for every item, in completion order.

        ``fn`` must be a module-level function (picklable); an exception in a task is re-raised here.
        """

    def map_indexed(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[int, R]]:
        """Yield ``(index, fn(items[index]))`` for every item, in completion order (sort by index for
        the input order)."""
        yield from self.map_unordered(partial(_indexed, fn), list(enumerate(items)))

    def close(self) -> None:  # noqa: B027 - executors without resources keep the default
        """Release workers and connections (idempotent)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class SerialExecutor(Executor):
    """Runs every task in this process, one after another."""

    def __init__(self) -> None:
        self.name = "serial (this process)"
        self.jobs = 1

    def map_unordered(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[R]:
        for item in items:
            yield _single_threaded(fn, item)


class JoblibExecutor(Executor):
    """Local worker processes through joblib's loky backend.

    Parameters
    ----------
    jobs : int
        Number of worker processes.
    """

    def __init__(self, jobs: int) -> None:
        if jobs < 1:
            raise ConfigError(f"--jobs must be at least 1, got {jobs}")
        self.jobs = jobs
        self.name = f"local ({jobs} processes)"

    def map_unordered(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[R]:
        if not items:
            return
        from joblib import Parallel, delayed

        parallel = Parallel(
            n_jobs=min(self.jobs, len(items)), backend="loky", return_as="generator_unordered"
        )
        yield from parallel(delayed(_single_threaded)(fn, item) for item in items)


_MAX_HANDSHAKE_BYTES = 1 << 20
"""A Dask scheduler's first message (its handshake) is far smaller than this."""


def _unreachable(address: str, why: str) -> str:
    return (
        f"cannot reach a Dask scheduler at {address} ({why}); start one (`dask scheduler`, then "
        "`dask worker HOST:PORT`) or use --executor local"
    )


def _probe_scheduler(address: str, timeout: float) -> None:
    """Check within ``timeout`` seconds that a Dask scheduler listens at ``HOST:PORT``.

    A scheduler sends its handshake as soon as a connection opens: an 8-byte little-endian length
    followed by that many bytes. A closed port, an unroutable host, a server that stays silent (HTTP)
    or one that sends something else (SSH, a greeting banner) is refused with :class:`ConfigError`,
    before distributed tries to read (and allocate) a frame of whatever length the bytes spell.
    """
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    deadline = time.monotonic() + timeout
    try:
        sock = socket.create_connection((host, int(port)), timeout=timeout)
    except TimeoutError:
        raise ConfigError(_unreachable(address, f"no connection within {timeout:g} s")) from None
    except OSError as exc:
        raise ConfigError(_unreachable(address, exc.strerror or type(exc).__name__)) from None
    with sock:
        header = b""
        try:
            while len(header) < 8:
                sock.settimeout(max(deadline - time.monotonic(), 0.05))
                chunk = sock.recv(8 - len(header))
                if not chunk:
                    break
                header += chunk
        except TimeoutError:
            raise ConfigError(
                _unreachable(
                    address, f"a server listens but sent no Dask handshake in {timeout:g} s"
                )
            ) from None
        except OSError as exc:
            raise ConfigError(_unreachable(address, exc.strerror or type(exc).__name__)) from None
    if len(header) < 8:
        raise ConfigError(_unreachable(address, "the server closed the connection"))
    size = struct.unpack("<Q", header)[0]
    if not 0 < size <= _MAX_HANDSHAKE_BYTES:
        raise ConfigError(_unreachable(address, "the server there does not speak Dask's protocol"))


class DaskExecutor(Executor):
    """Tasks on a Dask distributed cluster: an existing scheduler, or a ``LocalCluster`` started here.

    Parameters
    ----------
    address : str or None
        Scheduler address ``HOST:PORT`` (``tcp://`` added) or None to start a ``LocalCluster``.
    jobs : int
        Workers of the ``LocalCluster`` (one thread each); ignored for an existing scheduler.
    processes : bool
        Whether the ``LocalCluster`` workers are processes (True) or threads of this process.
    timeout : float
        Seconds to wait for the scheduler before giving up with :class:`ConfigError`.
    """

    def __init__(
        self,
        address: str | None = None,
        jobs: int = 2,
        *,
        processes: bool = True,
        timeout: float = 5.0,
    ) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:  # pragma: no cover - dask is a declared extra
            raise ConfigError(
                "the Dask executor needs dask[distributed]: pip install 'dfalens[dask]'"
            ) from exc
        self._cluster: Any = None
        if address is None:
            if jobs < 1:
                raise ConfigError(f"--jobs must be at least 1, got {jobs}")
            self._cluster = LocalCluster(
                n_workers=jobs,
                threads_per_worker=1,
                processes=processes,
                dashboard_address=None,
            )
            self._client = Client(self._cluster, timeout=f"{timeout}s")
            self.jobs = jobs
            self.name = f"local-dask ({jobs} workers)"
        else:
            _probe_scheduler(address, timeout)
            try:
                self._client = Client(f"tcp://{address}", timeout=f"{timeout}s")
            except (OSError, TimeoutError, ValueError, MemoryError) as exc:
                raise ConfigError(_unreachable(address, f"no answer within {timeout:g} s")) from exc
            threads = sum(self._client.nthreads().values())
            self.jobs = max(1, threads)
            self.name = f"dask ({address}, {threads} worker threads)"

    def map_unordered(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[R]:
        if not items:
            return
        from distributed import as_completed

        futures = [self._client.submit(_single_threaded, fn, item, pure=False) for item in items]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            self._client.cancel([f for f in futures if not f.done()])

    def close(self) -> None:
        client, cluster = getattr(self, "_client", None), self._cluster
        self._cluster = None
        if client is not None:
            client.close()
            self._client = None
        if cluster is not None:
            # a busy worker killed at shutdown is expected here; keep the nanny's warning off stderr
            nanny = logging.getLogger("distributed.nanny")
            level = nanny.level
            nanny.setLevel(logging.ERROR)
            try:
                cluster.close()
            finally:
                nanny.setLevel(level)


def make_executor(
    spec: str = "local", jobs: int | None = None, *, timeout: float = 5.0
) -> Executor:
    """Build an executor from its command-line spelling.

    Parameters
    ----------
    spec : str
        ``"local"``, ``"local-dask"`` or ``"dask://HOST:PORT"`` (``tcp://HOST:PORT`` also accepted).
    jobs : int or None
        Parallel tasks for local executors; None uses every CPU this process may use.
    timeout : float
        Seconds to wait for a remote scheduler.

    Returns
    -------
    Executor

    Raises
    ------
    ConfigError
        An unknown spec, a malformed address, or a scheduler that does not answer within ``timeout``.
    """
    n = default_jobs() if jobs is None else int(jobs)
    if n < 1:
        raise ConfigError(f"--jobs must be at least 1, got {n}")
    if spec == "local":
        return SerialExecutor() if n == 1 else JoblibExecutor(n)
    if spec == "local-dask":
        return DaskExecutor(None, n, timeout=timeout)
    match = _ADDRESS.match(spec)
    if match:
        port = int(match["port"])
        if not 0 < port < 65536:
            raise ConfigError(f"port {port} in {spec!r} is out of range 1..65535")
        return DaskExecutor(f"{match['host']}:{port}", timeout=timeout)
    raise ConfigError(f"unknown executor {spec!r}; use 'local', 'local-dask' or 'dask://HOST:PORT'")
