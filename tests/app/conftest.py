"""What the AppTest files share."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def scan_components_once():
    """Each new AppTest scans the metadata of every installed package for Streamlit components (about 0.3 s of
    parsing; 9 of this directory's 74 s in a profile). The installed packages do not change during the run, so
    the first scan is handed to every later AppTest. A server scans once, at its start."""
    from streamlit.components.v2 import manifest_scanner

    found = manifest_scanner.scan_component_manifests()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(manifest_scanner, "scan_component_manifests", lambda *args, **kwargs: list(found))
        yield


@pytest.fixture(scope="session", autouse=True)
def poll_script_runs_calmly():
    """AppTest waits for a page run by checking a thousand times a second whether it has ended; each check takes
    the interpreter lock from the run it waits for. Checking every 20 ms ends the wait at most 20 ms later."""
    import time

    from streamlit.testing.v1 import local_script_runner

    original = local_script_runner.require_widgets_deltas

    def wait(runner, timeout: float = 3) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not runner.script_stopped():
            time.sleep(0.02)
        original(runner, max(0.01, deadline - time.monotonic()))  # returns at once, or raises AppTest's time-out

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(local_script_runner, "require_widgets_deltas", wait)
        yield
