"""Long runs (training, the layout check) kept by the server under the session's token, so a reload finds them.

A browser reload starts a new Streamlit session: whatever lived only in ``st.session_state`` is gone, while
the run's thread goes on computing. The :data:`JOBS` registry keeps each session's runs under its URL token
(the one :mod:`dashboard.workspace` keeps its work under), so the reloaded page attaches to the run in
progress (its progress, then its result). Nothing is left computing for nobody:

- a run whose browser session is gone (the tab closed, the network lost) and that no new session attached
  to within :data:`ORPHAN_GRACE_SECONDS` is stopped, and says so (:attr:`stopped_because`) to whoever
  opens the session again;
- a run whose session's workspace has expired (removed after 2 h unused) is stopped;
- one heavy run per session at a time, and at most :data:`MAX_RUNNING` on the server.

Jobs are the dashboard's own thread objects (:class:`~dashboard.training.TrainingJob`,
:class:`~dashboard.compare.LayoutCheckJob`): anything with ``running``, ``stop_event`` and a writable
``stopped_because``. No streamlit import here: the page glue hands in whether a session is still connected.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from dashboard.workspace import TTL_SECONDS

MAX_RUNNING = 4            # heavy runs on the server at once (each keeps CPU threads busy)
MAX_SESSIONS = 64          # sessions whose last runs are kept (finished ones first to go)
ORPHAN_GRACE_SECONDS = 60  # a reload reattaches within seconds; a closed tab's run stops after this
CHECK_SECONDS = 5.0        # how often the watchdog looks
KINDS = {"train": "a training run (Train page)", "compare": "a layout check (Compare page)"}


class Busy(Exception):
    """A run cannot start now (this session already runs one, or the server runs its most); the message says so."""


@dataclass
class Entry:
    """One session's run: the job, its kind, the session attached to it, the workspace folder of the session."""

    job: Any
    kind: str
    session_id: str
    folder: Path | None
    started: float
    lost_since: float | None = None


class JobRegistry:
    """Runs by session token (see the module docstring); thread-safe.

    Parameters
    ----------
    is_alive : session id -> whether that browser session is still connected (the glue passes Streamlit's
        ``Runtime.is_active_session``); without it, sessions count as alive
    max_running, grace, ttl : see :data:`MAX_RUNNING`, :data:`ORPHAN_GRACE_SECONDS`, the workspace's TTL
    """

    def __init__(self, *, is_alive: Callable[[str], bool] | None = None, max_running: int = MAX_RUNNING,
                 grace: float = ORPHAN_GRACE_SECONDS, ttl: float = TTL_SECONDS):
        self.is_alive = is_alive
        self.max_running = max_running
        self.grace = grace
        self.ttl = ttl
        self._entries: dict[str, dict[str, Entry]] = {}  # token -> kind -> entry
        self._lock = threading.Lock()
        self._watchdog: threading.Thread | None = None

    # ------------------------------------------------------------ starting and finding
    def start(self, token: str, kind: str, job: Any, *, session_id: str = "", folder: Path | None = None) -> Any:
        """Register ``job`` for the session ``token`` and start it; returns it.

        Raises
        ------
        Busy
            When this session already runs a job (of any kind), or the server runs :attr:`max_running`.
        """
        self.check()
        with self._lock:
            mine = [e for e in self._entries.get(token, {}).values() if e.job.running]
            if mine:
                raise Busy(f"This session is already running {KINDS.get(mine[0].kind, 'a run')}: wait for it or "
                           "stop it there before starting another (one long run per session; another tab with "
                           "the same address shares this session).")
            running = sum(e.job.running for kinds in self._entries.values() for e in kinds.values())
            if running >= self.max_running:
                raise Busy(f"The server is running {running} long runs for other sessions, its most at once. "
                           "Try again in a few minutes.")
            self._entries.setdefault(token, {})[kind] = Entry(job, kind, session_id, folder, time.monotonic())
            self._trim()
        job.start()
        self._ensure_watchdog()
        return job

    def jobs(self, token: str) -> dict[str, Any]:
        """The session's last job of each kind (running or finished), by kind."""
        with self._lock:
            return {kind: entry.job for kind, entry in self._entries.get(token, {}).items()}

    def attach(self, token: str, session_id: str) -> dict[str, Any]:
        """A (new) browser session of ``token`` takes over its runs: they are watched for it now; returns them."""
        with self._lock:
            entries = self._entries.get(token, {})
            for entry in entries.values():
                entry.session_id = session_id
                entry.lost_since = None
            return {kind: entry.job for kind, entry in entries.items()}

    def move(self, old: str, new: str, jobs: list, folder: Path | None = None) -> None:
        """``jobs`` (of session ``old``) follow their tab to its new token (its own workspace, see
        ``glue.fork_workspace``); the session's other runs stay."""
        with self._lock:
            entries = self._entries.get(old, {})
            for kind, entry in list(entries.items()):
                if any(entry.job is job for job in jobs):
                    entry.folder = folder if folder is not None else entry.folder
                    self._entries.setdefault(new, {})[kind] = entries.pop(kind)

    # ------------------------------------------------------------ stopping
    def check(self, now: float | None = None) -> list[str]:
        """Stop runs nobody is left to see: session gone past the grace time, or workspace expired.

        Returns the reasons given (one per run stopped).
        """
        now = time.monotonic() if now is None else now
        stopped = []
        with self._lock:
            for token, kinds in list(self._entries.items()):
                expired = self._expired(kinds)
                for entry in kinds.values():
                    job = entry.job
                    if not job.running or job.stop_event.is_set():
                        continue
                    reason = None
                    if expired:
                        reason = "its session expired (work is kept 2 h after its last use)"
                    elif self.is_alive is not None and entry.session_id and not self.is_alive(entry.session_id):
                        entry.lost_since = now if entry.lost_since is None else entry.lost_since
                        if now - entry.lost_since >= self.grace:
                            reason = (f"no browser tab showed it for {self.grace:.0f} s (the tab was closed "
                                      "or lost its connection)")
                    else:
                        entry.lost_since = None
                    if reason:
                        job.stopped_because = reason
                        job.stop_event.set()
                        stopped.append(reason)
                if expired and not any(e.job.running for e in kinds.values()):
                    del self._entries[token]
        return stopped

    def _expired(self, kinds: dict[str, Entry]) -> bool:
        folders = [e.folder for e in kinds.values() if e.folder is not None]
        if not folders:
            return False
        folder = folders[0]
        try:
            return time.time() - folder.stat().st_mtime > self.ttl
        except OSError:  # swept away
            return True

    def _trim(self) -> None:
        """Keep at most MAX_SESSIONS sessions' runs: drop the sessions whose runs finished longest ago."""
        if len(self._entries) <= MAX_SESSIONS:
            return
        idle = sorted((max(e.started for e in kinds.values()), token) for token, kinds in self._entries.items()
                      if not any(e.job.running for e in kinds.values()))
        for _, token in idle[:len(self._entries) - MAX_SESSIONS]:
            del self._entries[token]

    def _ensure_watchdog(self) -> None:
        with self._lock:
            if self._watchdog is not None and self._watchdog.is_alive():
                return
            self._watchdog = threading.Thread(target=self._watch, name="rnaimg-jobs-watchdog", daemon=True)
            self._watchdog.start()

    def _watch(self) -> None:
        while True:
            time.sleep(CHECK_SECONDS)
            self.check()
            with self._lock:
                if not any(e.job.running for kinds in self._entries.values() for e in kinds.values()):
                    self._watchdog = None
                    return


JOBS = JobRegistry()
"""The server's registry (one per server process); the glue sets :attr:`JobRegistry.is_alive`."""
