"""Run one benchmark measurement in its own process (stdlib only: peer environments import it too)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def run_worker(script: str | Path, task: dict, *, cap: float, cwd: str | Path,
               python: str = sys.executable) -> dict:
    """Run ``python script --worker TASK_JSON`` and read the JSON object on its last stdout line.

    Returns that object with ``status = "ok"``, or ``{"status": ...}`` naming the timeout or the
    worker's last error line.
    """
    try:
        proc = subprocess.run([python, str(Path(script).resolve()), "--worker", json.dumps(task)],
                              capture_output=True, text=True, timeout=cap, cwd=cwd)
    except subprocess.TimeoutExpired:
        return {"status": f"over the {cap:.0f} s cap"}
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        return {"status": "failed: " + (lines[-1] if lines else f"exit {proc.returncode}")}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["status"] = "ok"
    return result
