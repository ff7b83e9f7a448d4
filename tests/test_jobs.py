"""Background jobs (explorer/jobs.py) with small real child processes: progress, one per key, cancel,
failure, and the hook run when one succeeds."""

from __future__ import annotations

import sys
import textwrap
import time
from pathlib import Path

import pytest

from explorer.jobs import CANCELLED, DONE, FAILED, RUNNING, JobRefused, Jobs, JobStatus


def script(body: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(body)]


STEPS = """
import json, sys, time
for done in range(1, 4):
    print(json.dumps({"progress": {"stage": "step", "done": done, "total": 3}}), flush=True)
    time.sleep(0.05)
print("a library's own line", flush=True)
print(json.dumps({"result": {"model": "folder", "answer": 42}}), flush=True)
"""


def wait_until(condition, timeout: float = 30.0) -> None:
    end = time.time() + timeout
    while not condition():
        if time.time() > end:
            raise AssertionError("timed out")
        time.sleep(0.05)


def test_a_job_reports_its_progress_and_result_and_runs_the_hook() -> None:
    finished: list[JobStatus] = []
    jobs = Jobs(on_done=finished.append)
    jobs.start("m", script(STEPS))
    status = jobs.wait("m", 30)
    assert status is not None and status.state == DONE
    assert (status.done, status.total, status.fraction) == (3, 3, 1.0)
    assert status.result == {"model": "folder", "answer": 42}
    assert finished and finished[0].result == status.result


def test_a_second_job_for_the_same_key_is_refused_while_one_runs_and_cancel_cleans_up(
    tmp_path: Path,
) -> None:
    partial = tmp_path / ".child.partial"
    slow = f"""
    import json, pathlib, time
    pathlib.Path({str(partial)!r}).mkdir()
    (pathlib.Path({str(partial)!r}) / "half.bin").write_bytes(b"x")
    for done in range(1, 1000):
        print(json.dumps({{"progress": {{"stage": "training", "done": done, "total": 1000}}}}),
              flush=True)
        time.sleep(0.1)
    """
    jobs = Jobs()
    jobs.start("m", script(slow), partial=partial)
    with pytest.raises(JobRefused, match="a retrain of 'm' is already running"):
        jobs.start("m", script(STEPS))
    jobs.start("other", script(STEPS))  # another model is not held up
    wait_until(lambda: (jobs.status("m").done or 0) >= 2)
    running = jobs.status("m")
    assert running.state == RUNNING and running.remaining_seconds is not None
    status = jobs.cancel("m")
    assert status is not None and status.state == CANCELLED
    assert not partial.exists()
    assert jobs.wait("other", 30).state == DONE
    assert jobs.running() == []
    jobs.start("m", script(STEPS))  # free again
    assert jobs.wait("m", 30).state == DONE


def test_a_failing_job_says_its_last_error_line(tmp_path: Path) -> None:
    partial = tmp_path / ".x.partial"
    partial.mkdir()
    failing = """
    import sys
    print("a warning first", file=sys.stderr)
    print("error: the data set is gone", file=sys.stderr)
    sys.exit(2)
    """
    jobs = Jobs()
    jobs.start("m", script(failing), partial=partial)
    status = jobs.wait("m", 30)
    assert status.state == FAILED and status.error == "error: the data set is gone"
    assert not partial.exists()


def test_a_hook_that_fails_fails_the_job_with_its_reason() -> None:
    def hook(status: JobStatus) -> None:
        raise ValueError("the new folder cannot be read")

    jobs = Jobs(on_done=hook)
    jobs.start("m", script(STEPS))
    status = jobs.wait("m", 30)
    assert status.state == FAILED and status.error == "the new folder cannot be read"
