"""Background jobs: one long command per model at a time, in its own process.

A retrain takes minutes of CPU; in the app's process it would hold the interpreter and the torch
thread pool the other users' explanations need. Each job is a ``python -m explorer ...`` child
process that prints one JSON line per step on stdout (``{"progress": {"stage", "done", "total"}}``)
and its result last (``{"result": {...}}``); a reader thread keeps the job's :class:`JobStatus`.
Cancelling terminates the process (its own clean-up removes its partial folder; the job removes it
again in case the process was killed before it could).
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from explorer.errors import ExplorerError

log = logging.getLogger(__name__)

RUNNING, DONE, FAILED, CANCELLED = "running", "done", "failed", "cancelled"
STOP_GRACE_SECONDS = 10.0
MAX_ERROR_CHARS = 2_000


class JobRefused(ExplorerError):
    """A job was asked for while another of the same key runs."""


@dataclass(frozen=True)
class JobStatus:
    """Where one job is.

    Attributes:
        key: what it runs for (a model id): one job per key at a time.
        state: ``running``, ``done``, ``failed`` or ``cancelled``.
        stage: what it is doing now (as the process last said).
        done, total: steps done and in all (``total`` 0 until the process has said).
        started, finished: ``time.time()`` stamps (``finished`` ``None`` while running).
        result: the process's result record (``done``), else ``None``.
        error: the process's last error line (``failed``), else ``""``.
        partial: the folder the process writes before renaming it (removed if it is cancelled).
    """

    key: str
    state: str
    stage: str
    done: int
    total: int
    started: float
    finished: float | None = None
    result: dict[str, Any] | None = None
    error: str = ""
    partial: Path | None = None

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0

    @property
    def elapsed(self) -> float:
        return (self.finished or time.time()) - self.started

    @property
    def remaining_seconds(self) -> float | None:
        """An estimate from the pace so far (``None`` before the first step)."""
        if self.state != RUNNING or not self.done or not self.total:
            return None
        return self.elapsed / self.done * (self.total - self.done)


class _Job:
    def __init__(self, status: JobStatus, process: subprocess.Popen[str]) -> None:
        self.status = status
        self.process = process
        self.cancelled = False
        self.finished = threading.Event()


class Jobs:
    """At most one running job per key; the others' statuses are kept until the next start.

    Args:
        on_done: called with the final status of a job that succeeded (in the reader thread), e.g.
            to register the model it wrote; an exception it raises fails the job.
    """

    def __init__(self, on_done: Callable[[JobStatus], None] | None = None) -> None:
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.Lock()
        self._on_done = on_done
        atexit.register(self.shutdown)  # no retrain outlives the app that started it

    def start(
        self,
        key: str,
        command: Sequence[str],
        env: dict[str, str] | None = None,
        partial: Path | None = None,
        cwd: Path | None = None,
    ) -> JobStatus:
        """Starts ``command`` for ``key``.

        Raises:
            JobRefused: a job for ``key`` is running.
        """
        with self._lock:
            self._refuse_if_running(key)
            process = subprocess.Popen(
                list(command),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                text=True,
                env={**os.environ, **(env or {})},
                cwd=cwd,
                start_new_session=True,  # a Ctrl-C in the app's terminal is the app's alone
            )
            status = JobStatus(key, RUNNING, "starting", 0, 0, time.time(), partial=partial)
            job = _Job(status, process)
            self._jobs[key] = job
        threading.Thread(target=self._follow, args=(job,), daemon=True, name=f"job-{key}").start()
        return status

    def check_free(self, key: str) -> None:
        """Raises :class:`JobRefused` if a job for ``key`` is running."""
        with self._lock:
            self._refuse_if_running(key)

    def _refuse_if_running(self, key: str) -> None:
        running = self._jobs.get(key)
        if running is not None and running.status.state == RUNNING:
            raise JobRefused(
                f"a retrain of '{key}' is already running ({running.status.stage}, "
                f"{running.status.fraction:.0%} done); wait for it or cancel it first"
            )

    def status(self, key: str) -> JobStatus | None:
        with self._lock:
            job = self._jobs.get(key)
            return None if job is None else job.status

    def running(self) -> list[str]:
        with self._lock:
            return [k for k, j in self._jobs.items() if j.status.state == RUNNING]

    def cancel(self, key: str, wait: float = STOP_GRACE_SECONDS * 2) -> JobStatus | None:
        """Stops ``key``'s running job (terminate, then kill after a grace period) and waits for
        its clean-up; returns its final status (``None``: no job)."""
        with self._lock:
            job = self._jobs.get(key)
            if job is None or job.status.state != RUNNING:
                return None if job is None else job.status
            job.cancelled = True
        _stop(job.process)
        job.finished.wait(wait)
        return self.status(key)

    def wait(self, key: str, timeout: float | None = None) -> JobStatus | None:
        """Waits until ``key``'s job has finished (or ``timeout`` seconds); returns its status."""
        with self._lock:
            job = self._jobs.get(key)
        if job is not None:
            job.finished.wait(timeout)
        return self.status(key)

    def shutdown(self) -> None:
        """Cancels every running job (the app is stopping)."""
        for key in self.running():
            self.cancel(key)

    # --- the reader thread -------------------------------------------------------------------
    def _set(self, job: _Job, **changes: Any) -> None:
        with self._lock:
            job.status = replace(job.status, **changes)

    def _follow(self, job: _Job) -> None:
        errors: list[str] = []
        reader = threading.Thread(
            target=lambda: errors.extend(job.process.stderr or ()), daemon=True
        )
        reader.start()
        result = None
        assert job.process.stdout is not None
        for line in job.process.stdout:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # not ours: a library printed something
            if not isinstance(record, dict):
                continue
            if isinstance(record.get("progress"), dict):
                p = record["progress"]
                self._set(job, stage=str(p.get("stage", "")), done=int(p.get("done", 0)),
                          total=int(p.get("total", 0)))  # fmt: skip
            elif isinstance(record.get("result"), dict):
                result = record["result"]
        code = job.process.wait()
        reader.join(5)
        partial = job.status.partial
        if job.cancelled or code in (-signal.SIGTERM, -signal.SIGKILL):
            if partial is not None:
                shutil.rmtree(partial, ignore_errors=True)
            self._finish(job, state=CANCELLED, stage="cancelled")
            return
        if code != 0 or result is None:
            lines = [line.strip() for line in errors if line.strip()]
            said = [line for line in lines if line.startswith("error:")]
            message = (said or lines or [f"the process ended with status {code}"])[-1]
            if partial is not None:
                shutil.rmtree(partial, ignore_errors=True)
            self._finish(job, state=FAILED, stage="failed", error=message[:MAX_ERROR_CHARS])
            return
        self._set(job, result=result)
        try:
            if self._on_done is not None:
                self._on_done(job.status)
        except Exception as error:  # the job fails with the reason; the app lives on
            log.exception("after job %s", job.status.key)
            self._finish(job, state=FAILED, stage="failed", error=str(error)[:MAX_ERROR_CHARS])
            return
        self._finish(job, state=DONE, stage="done")

    def _finish(self, job: _Job, **changes: Any) -> None:
        self._set(job, finished=time.time(), **changes)
        job.finished.set()


def _stop(process: subprocess.Popen[str]) -> None:
    """SIGTERM (the process cleans up), then SIGKILL if it has not ended in the grace period."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
