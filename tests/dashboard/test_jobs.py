"""The server's registry of long runs: a reload finds its run, nothing computes for nobody."""

from __future__ import annotations

import os
import threading
import time

import pytest

from dashboard.jobs import Busy, JobRegistry


class FakeJob:
    """A run that lasts until stopped (or released), like TrainingJob / LayoutCheckJob."""

    def __init__(self):
        self.stop_event = threading.Event()
        self.stopped_because = None
        self.release = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self.stop_event.is_set() and not self.release.is_set():
            time.sleep(0.01)

    @property
    def running(self):
        return self._thread.is_alive()


def finish(job):
    job.release.set()
    job._thread.join(5)


def test_a_reload_finds_its_run_and_one_run_per_session(tmp_path):
    registry = JobRegistry()
    job = registry.start("token-a", "train", FakeJob(), session_id="s1", folder=tmp_path)
    assert job.running and registry.attach("token-a", "s2") == {"train": job}  # the reloaded session's
    with pytest.raises(Busy, match="already running a training run"):
        registry.start("token-a", "compare", FakeJob(), session_id="s2", folder=tmp_path)
    assert registry.jobs("token-b") == {}  # other sessions see nothing of it
    finish(job)
    other = registry.start("token-a", "compare", FakeJob(), session_id="s2", folder=tmp_path)  # now it may
    assert set(registry.jobs("token-a")) == {"train", "compare"}
    finish(other)


def test_the_server_runs_at_most_max_running(tmp_path):
    registry = JobRegistry(max_running=2)
    jobs = [registry.start(f"token-{i}", "train", FakeJob(), folder=tmp_path) for i in range(2)]
    with pytest.raises(Busy, match="its most at once"):
        registry.start("token-3", "train", FakeJob(), folder=tmp_path)
    for job in jobs:
        finish(job)


def test_a_run_nobody_watches_is_stopped_and_says_why(tmp_path):
    alive = {"s1": True}
    registry = JobRegistry(is_alive=lambda sid: alive.get(sid, False), grace=60)
    job = registry.start("token-a", "train", FakeJob(), session_id="s1", folder=tmp_path)
    now = time.monotonic()
    assert registry.check(now) == [] and job.running
    alive["s1"] = False  # the tab closed
    assert registry.check(now + 1) == [] and job.running  # a reload has a minute to attach
    registry.attach("token-a", "s2")  # ... and does: watched again
    alive["s2"] = True
    assert registry.check(now + 120) == [] and job.running
    alive["s2"] = False
    registry.check(now + 121)
    stopped = registry.check(now + 182)
    assert stopped and "no browser tab showed it for 60 s" in job.stopped_because
    job._thread.join(5)
    assert not job.running


def test_a_run_of_an_expired_workspace_is_stopped(tmp_path):
    registry = JobRegistry(ttl=3600)
    job = registry.start("token-a", "compare", FakeJob(), folder=tmp_path)
    old = time.time() - 7200
    os.utime(tmp_path, (old, old))
    registry.check()
    job._thread.join(5)
    assert not job.running and "session expired" in job.stopped_because
    registry.check()
    assert registry.jobs("token-a") == {}  # forgotten once it has stopped


def test_a_forked_tab_takes_its_own_runs_along(tmp_path):
    registry = JobRegistry()
    job = registry.start("token-a", "train", FakeJob(), folder=tmp_path)
    registry.move("token-a", "token-b", [job, None], tmp_path)
    assert registry.jobs("token-a") == {} and registry.jobs("token-b") == {"train": job}
    finish(job)


def test_training_progress_spans_the_whole_ensemble_with_time_left():
    from dashboard.training import TrainingJob
    from rnaimg_core.model import TrainSettings

    job = TrainingJob(None, "key", TrainSettings(epochs=100, patience=15, n_models=5))
    job.started = 0.0
    job.history = [{"epoch": e, "model": 1, "n_models": 5} for e in range(1, 21)]  # network 1 stopped at 20
    job.history += [{"epoch": e, "model": 2, "n_models": 5} for e in range(1, 11)]
    fraction, text = job.status(now=30.0)  # 30 epochs in 30 s
    # networks 2-5 are expected to take 20 epochs like network 1: 30 of 100 epochs done, 70 s left
    assert fraction == pytest.approx(0.3)
    assert text == "network 2 of 5, epoch 10 (at most 100) · 30 % · about 70 s left"
    job.history.append({"epoch": 1, "model": 3, "n_models": 5})
    later, _ = job.status(now=31.0)
    assert later > fraction  # never starts again at 0 for the next network


def test_a_page_following_a_run_wakes_when_it_ends_not_at_its_next_redraw():
    """The Train and Compare pages wait on :meth:`join` between progress redraws (``glue.follow_job``)."""
    from dashboard.training import TrainingJob
    from rnaimg_core.model import TrainSettings

    job = TrainingJob(None, "key", TrainSettings())
    began = time.monotonic()
    job.join(30.0)  # never started (a restored model, a refused run): nothing to wait for
    assert time.monotonic() - began < 5
    release = threading.Event()
    job._thread = threading.Thread(target=release.wait, daemon=True)  # a run that lasts until released
    job._thread.start()
    job.join(0.05)
    assert job.running  # the wait ends at its timeout while the run goes on
    threading.Timer(0.1, release.set).start()
    began = time.monotonic()
    job.join(30.0)
    assert not job.running and time.monotonic() - began < 5  # woken by the end, long before the timeout
