"""A real ``streamlit run`` of the dashboard on a free port, and Debian's Chromium: what the browser tests
(``conftest.py``) and the page benchmarks (``benchmarks/bench_pages.py``, ``bench_browser_work.py``) share.

Facts these rest on are in ``/work/shared/TESTING.md`` (Streamlit 1.67, Chromium here).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CHROMIUM = os.environ.get("RNAIMG_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def streamlit_args(app: Path | str, port: int) -> list[str]:
    """``streamlit``'s arguments to run ``app`` headless on ``port`` of this machine only, without usage
    statistics and without a file watcher (no module reloads mid-run when files change)."""
    return ["run", str(app), "--server.headless", "true", "--server.port", str(port),
            "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none"]


def start_streamlit(app: Path | str, *, cwd: Path, command: list[str] | None = None, env: dict | None = None,
                    log=subprocess.DEVNULL, timeout: float = 60, where: str = "") -> tuple[subprocess.Popen, str]:
    """Start the dashboard ``app`` on a free port and wait until it answers its health check.

    Parameters
    ----------
    command : the program that takes the arguments of :func:`streamlit_args` after its own (default
        ``python -m streamlit``; a benchmark's own launcher, say)
    log : where the server's output goes (an open file or ``subprocess.DEVNULL``)
    where : a hint for the error message (a log file's name)

    Returns
    -------
    (process, address such as ``http://127.0.0.1:PORT``); stop it with :func:`stop`

    Raises
    ------
    RuntimeError
        When the server exits or does not answer within ``timeout`` seconds (it is stopped first).
    """
    port = free_port()
    argv = [*(command or [sys.executable, "-m", "streamlit"]), *streamlit_args(app, port)]
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    address = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{address}/_stcore/health", timeout=2) as reply:
                if reply.status == 200:
                    return process, address
        except OSError:
            pass
        if process.poll() is not None or time.time() > deadline:
            stop(process)
            raise RuntimeError(f"streamlit did not start from {cwd}{'; see ' + where if where else ''}")
        time.sleep(0.3)


def stop(process: subprocess.Popen, wait_s: float = 10) -> None:
    """Ask the server to end, and end it if it has not within ``wait_s`` seconds."""
    process.terminate()
    try:
        process.wait(wait_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
