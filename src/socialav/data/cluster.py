"""Run one task per video: in this process, on a local process pool, or on a Dask cluster.

The dataset commands (``socialav data prepare``, ``socialav score``) cut their work into
independent per-video tasks: a picklable function applied to a picklable task record, which
returns a small picklable result. :func:`run_tasks` runs them

- inline (``workers=1``, no cluster): in this process, in order;
- on a local process pool (``workers=N``): :class:`concurrent.futures.ProcessPoolExecutor`
  with the ``spawn`` start method (no forked copies of PyTorch or decoder threads);
- on Dask distributed (``cluster=...``, needs the ``cluster`` extra, ``dask[distributed]``):
  ``"tcp://host:8786"`` connects to a running scheduler (``dask scheduler`` plus
  ``dask worker`` processes on other machines, each with socialav installed and the dataset
  folders on a shared file system at the same paths); ``"local:N"`` starts a
  :class:`distributed.LocalCluster` of ``N`` single-threaded worker processes for the
  duration of the call.

Results come back as tasks finish (not in submission order), each with its index. An
exception raised by a task is raised again here; the task functions of this package catch
the errors they expect (missing or unreadable videos ...) and report them in their result
instead, so one bad video never stops a run.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import socket
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import TypeVar

logger = logging.getLogger(__name__)

__all__ = ["ClusterSpec", "parse_cluster", "run_tasks", "worker_name"]

T = TypeVar("T")
R = TypeVar("R")

#: Scheme of a local Dask cluster started for one run: ``local:N``.
LOCAL_PREFIX = "local:"


@dataclass(frozen=True)
class ClusterSpec:
    """Where tasks go.

    Attributes:
        address: a Dask scheduler address (``tcp://host:8786``, ``tls://...``) or None for a
            :class:`distributed.LocalCluster`.
        local_workers: number of worker processes of the local cluster (when ``address`` is
            None).
    """

    address: str | None = None
    local_workers: int = 0


def parse_cluster(text: str) -> ClusterSpec:
    """Parse the ``--cluster`` option: ``local:N`` or a scheduler address.

    Raises:
        ValueError: ``local:`` without a positive integer, or an address without a scheme
            such as ``tcp://`` (the message shows both accepted forms).
    """
    text = text.strip()
    if text.startswith(LOCAL_PREFIX):
        count = text[len(LOCAL_PREFIX) :]
        if not count.isdigit() or int(count) < 1:
            raise ValueError(
                f"--cluster {text!r}: expected 'local:N' with N >= 1 worker processes, "
                f"e.g. 'local:4'"
            )
        return ClusterSpec(address=None, local_workers=int(count))
    if "://" not in text:
        raise ValueError(
            f"--cluster {text!r}: expected a Dask scheduler address such as "
            f"'tcp://host:8786', or 'local:N' to start N local worker processes"
        )
    return ClusterSpec(address=text)


def worker_name() -> str:
    """``host:pid`` of the process running a task (reported in task results)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _run_inline(func: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[int, R]]:
    for index, item in enumerate(items):
        yield index, func(item)


def _run_pool(func: Callable[[T], R], items: Sequence[T], workers: int) -> Iterator[tuple[int, R]]:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending = {pool.submit(func, item): index for index, item in enumerate(items)}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    index = pending.pop(future)
                    yield index, future.result()
        finally:
            for future in pending:
                future.cancel()


def _import_distributed():
    try:
        import distributed
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "--cluster needs Dask distributed: pip install 'socialav[cluster]' "
            "(or pip install 'dask[distributed]')"
        ) from exc
    return distributed


def _run_dask(
    func: Callable[[T], R], items: Sequence[T], spec: ClusterSpec, name: str
) -> Iterator[tuple[int, R]]:
    distributed = _import_distributed()
    local = None
    if spec.address is None:
        local = distributed.LocalCluster(
            n_workers=spec.local_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
        )
        client = distributed.Client(local)
    else:
        try:
            client = distributed.Client(spec.address, timeout="30s")
        except OSError as exc:
            raise ConnectionError(
                f"cannot reach the Dask scheduler at {spec.address} ({exc}); start one with "
                f"'dask scheduler' and workers with 'dask worker {spec.address}'"
            ) from exc
    try:
        run_id = uuid.uuid4().hex[:8]
        futures = {
            client.submit(func, item, pure=False, key=f"socialav-{name}-{run_id}-{index}"): index
            for index, item in enumerate(items)
        }
        logger.info("submitted %d %s tasks to %s", len(futures), name, client.scheduler.address)
        for future in distributed.as_completed(list(futures)):
            yield futures[future], future.result()
    finally:
        client.close()
        if local is not None:
            local.close()


def run_tasks(
    func: Callable[[T], R],
    items: Sequence[T],
    *,
    workers: int = 1,
    cluster: str | ClusterSpec | None = None,
    name: str = "task",
) -> Iterator[tuple[int, R]]:
    """Apply ``func`` to every item, yielding ``(index, result)`` as tasks finish.

    Args:
        func: a module-level (picklable) function of one task record.
        items: the task records (picklable).
        workers: local worker processes when no cluster is given (1: run in this process).
        cluster: ``None``, ``"local:N"``, a scheduler address, or a :class:`ClusterSpec`
            (see the module docstring).
        name: short label used in Dask task keys and logs.

    Raises:
        ValueError: ``workers < 1`` or a malformed ``cluster``.
        ImportError: a cluster is requested without Dask distributed installed.
        ConnectionError: the scheduler cannot be reached.
        Exception: whatever a task raised (remaining tasks are cancelled).
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, but got {workers}")
    if not items:
        return iter(())
    if cluster is not None:
        spec = parse_cluster(cluster) if isinstance(cluster, str) else cluster
        return _run_dask(func, items, spec, name)
    if workers == 1 or len(items) == 1:
        return _run_inline(func, items)
    return _run_pool(func, items, min(workers, len(items)))
