"""Where the recordings are scanned: this process, a local process pool, or a Dask cluster.

Every backend takes the same :class:`~afdetect.cohort.worker.Task` list and hands each
:class:`~afdetect.cohort.worker.Outcome` to the driver's callback as it arrives, in
completion order; the workers only compute and *return* the result files, the driver alone
writes (see :mod:`~afdetect.cohort.run` for why).

A worker process that dies mid-recording (SIGKILL, the out-of-memory killer) costs that
recording a retry, not the run: the pool is rebuilt and the unfinished recordings are
submitted again. When several were in flight, none is blamed: they are rerun one at a
time, so that a recording that kills its worker ``max_attempts`` times is the one
reported. On Dask the scheduler does the same (``distributed.scheduler.allowed-failures``,
3 by default) and the nanny restarts the worker.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from itertools import count, islice
from typing import Any

from afdetect.cohort.worker import Outcome, Task, scan_task
from afdetect.errors import AfdetectError

OnOutcome = Callable[[Outcome], None]
INSTALL_HINT = "pip install 'afdetect[cluster]' (Dask distributed)"


def run_serial(tasks: Iterable[Task], on_outcome: OnOutcome) -> None:
    """Scan every task in this process, in order."""
    for task in tasks:
        on_outcome(scan_task(task))


def died(task: Task, attempts: int) -> Outcome:
    """The outcome of a recording whose worker died ``attempts`` times while scanning it."""
    return Outcome(task.key, {}, {}, f"{task.source}: the worker process died {attempts} "
                                     "time(s) while scanning it (killed, or out of memory)",
                   0.0, 0.0, 0)


def run_pool(tasks: Iterable[Task], jobs: int, on_outcome: OnOutcome,
             max_attempts: int = 3) -> None:
    """Scan the tasks on ``jobs`` worker processes of this machine.

    At most ``jobs`` tasks are in flight, so that those lost with a broken pool are the
    ones that were running.
    """
    queue = deque(tasks)
    suspects: deque[Task] = deque()  # lost with others: rerun alone, to find the culprit
    deaths: Counter[str] = Counter()
    # spawn: a fresh interpreter per worker, holding none of the driver's files or locks
    context = multiprocessing.get_context("spawn")
    while queue or suspects:
        lost: list[Task] = []
        with ProcessPoolExecutor(jobs, mp_context=context, initializer=_exit_with_parent,
                                 initargs=(os.getpid(),)) as pool:
            running: dict[Future[Outcome], Task] = {}
            broken = False
            while (queue or suspects or running) and not lost and not broken:
                try:  # a task leaves its queue only once submitted
                    if suspects:
                        if not running:
                            running[pool.submit(scan_task, suspects[0])] = suspects[0]
                            suspects.popleft()
                    else:
                        while queue and len(running) < jobs:
                            running[pool.submit(scan_task, queue[0])] = queue[0]
                            queue.popleft()
                except BrokenProcessPool:  # a worker died since the last wait: rebuild
                    broken = True
                if not running:
                    continue
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                if broken or any(isinstance(f.exception(), BrokenProcessPool) for f in done):
                    done, _ = wait(running)  # a broken pool fails every unfinished future
                for future in done:
                    task = running.pop(future)
                    if isinstance(future.exception(), BrokenProcessPool):
                        lost.append(task)
                    else:
                        on_outcome(future.result())
        if len(lost) == 1:
            deaths[lost[0].key] += 1
            if deaths[lost[0].key] >= max_attempts:
                on_outcome(died(lost[0], deaths[lost[0].key]))
            else:
                suspects.appendleft(lost[0])
        else:
            suspects.extend(lost)


def _exit_with_parent(parent: int) -> None:
    """Pool initialiser: end this worker when the driver is gone (killed with SIGKILL, a
    driver cannot stop its pool), instead of scanning on for nobody."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="afdetect-parent-watch").start()


def run_dask(tasks: Iterable[Task], address: str, on_outcome: OnOutcome) -> None:
    """Scan the tasks on the Dask cluster whose scheduler is at ``address``.

    Twice as many tasks as the cluster has worker threads are kept in flight, so that no
    worker waits on the network for its next recording.
    """
    try:
        from distributed import Client, as_completed
        from distributed.scheduler import KilledWorker
    except ImportError:
        raise AfdetectError(f"--cluster needs Dask: {INSTALL_HINT}") from None
    try:
        client = Client(address, timeout="30s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise AfdetectError(f"--cluster {address}: cannot reach a Dask scheduler "
                            f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
                            ) from None
    with client:
        window = max(2, 2 * sum(client.nthreads().values()))
        pending = iter(tasks)
        running: dict[Any, Task] = {}  # distributed.Future -> its task
        flow = as_completed()
        run_id, numbers = uuid.uuid4().hex[:8], count()

        def submit(task: Task) -> None:
            future = client.submit(scan_task, task, pure=False,
                                   key=f"afdetect-scan-{run_id}-{next(numbers)}")
            running[future] = task
            flow.add(future)

        for task in islice(pending, window):
            submit(task)
        for future in flow:
            task = running.pop(future)
            try:
                outcome = future.result()
            except KilledWorker as exc:
                attempts = getattr(exc, "allowed_failures", None) or 3
                outcome = died(task, attempts)
            except Exception as exc:  # the cluster lost it (cancelled, unpicklable): go on
                text = str(exc).strip().splitlines()
                outcome = Outcome(task.key, {}, {}, f"{task.source}: the cluster failed it "
                                  f"({type(exc).__name__}: {text[0] if text else ''})",
                                  0.0, 0.0, 0)
            nxt = next(pending, None)
            if nxt is not None:
                submit(nxt)
            on_outcome(outcome)
