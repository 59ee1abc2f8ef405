"""Hostile command lines, classes 5 and 8 of the hardening issue: bad numbers and unwritable outputs.

Bad numbers stop at parse time (argparse, exit 2, one line); an unwritable ``--out`` stops
before any work with exit 2; a failure never leaves a partial file under the output name.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from rnaimg_core.cli import main


@pytest.fixture(scope="module")
def layout_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "layout.json"
    assert main(["layout", "--generator", "deepmapper", "--out", str(path)]) == 0
    return path


@pytest.mark.parametrize("argv", [
    ["train", "--images", "x.npz", "--out", "m", "--learning-rate", "-1"],
    ["train", "--images", "x.npz", "--out", "m", "--learning-rate", "nan"],
    ["train", "--images", "x.npz", "--out", "m", "--seed", "-1"],
    ["train", "--images", "x.npz", "--out", "m", "--batch-size", "0"],
    ["layout", "--generator", "random", "--out", "l.json", "--holdout", "-0.5"],
    ["layout", "--generator", "random", "--out", "l.json", "--holdout", "1"],
    ["layout", "--generator", "random", "--out", "l.json", "--synthetic", "0"],
    ["convert", "--layout", "l.json", "--out", "i.npz", "--chunk-size", "0"],
    ["explain", "--model", "m", "--images", "i.npz", "--out", "g.csv", "--top", "-5"],
])
def test_numbers_are_checked_at_parse_time(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and ("out of range" in err or "not a finite number" in err), err


def out_cases(tmp_path):
    readonly = tmp_path / "readonly"
    readonly.mkdir()
    os.chmod(readonly, 0o500)
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    return {"missing folder": tmp_path / "missing" / "out", "read-only folder": readonly / "out",
            "file-shaped folder": a_file / "out"}


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_readonly_folder_is_refused(tmp_path, capsys):
    out = out_cases(tmp_path)["read-only folder"]
    assert main(["layout", "--generator", "random", "--out", str(out)]) == 2
    assert "not writable" in capsys.readouterr().err


@pytest.mark.parametrize("case", ["missing folder", "file-shaped folder"])
def test_unwritable_outputs_fail_before_work(tmp_path, layout_file, case, capsys):
    out = out_cases(tmp_path)[case]
    commands = [["layout", "--generator", "random", "--out", str(out)],
                ["convert", "--layout", str(layout_file), "--out", str(out)],
                ["explain", "--model", str(tmp_path), "--images", "x", "--out", str(out)]]
    if case == "file-shaped folder":  # a missing model folder is created, parents included
        commands.append(["train", "--images", str(tmp_path / "none.npz"), "--out", str(out / "x")])
    for argv in commands:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: Cannot write"), err


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if a command reads its input, trains or starts a Dask cluster."""
    import rnaimg_core.cli.bigrun as cli_bigrun
    import rnaimg_core.cli.compare as cli_compare
    import rnaimg_core.compare as compare

    def work(*args, **kwargs):
        raise AssertionError("work started before the output was checked")

    monkeypatch.setattr(cli_compare, "read_input", work)
    monkeypatch.setattr(compare, "check_layouts", work)
    monkeypatch.setattr(cli_bigrun, "open_cohort", work)
    monkeypatch.setattr(cli_bigrun, "dask_client", work)


@pytest.mark.parametrize("case", ["missing folder", "file-shaped folder", "read-only folder"])
def test_compare_and_big_runs_check_their_output_before_any_work(tmp_path, layout_file, case, no_work, capsys):
    if case == "read-only folder" and os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    out = str(out_cases(tmp_path)[case])
    commands = [["compare", "--quick", "--out", out + ".csv"],
                ["layout", "--engine", "dask", "--generator", "random", "--input", "m.csv", "--out", out + ".json"]]
    if case != "missing folder":  # a store's missing folder is created, parents included
        commands.append(["convert", "--engine", "dask", "--layout", str(layout_file), "--input", "m.csv",
                         "--out", out + ".zarr"])
    for argv in commands:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: Cannot write") and "Traceback" not in err, err


def test_a_store_never_replaces_another_folder(tmp_path, layout_file, no_work, capsys):
    folder = tmp_path / "mine.zarr"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    assert main(["convert", "--engine", "dask", "--layout", str(layout_file), "--input", "m.csv",
                 "--out", str(folder)]) == 2
    assert "is not an rnaimg images store" in capsys.readouterr().err
    assert (folder / "notes.txt").read_text() == "keep me"


def test_compare_table_replaces_the_file_only_when_complete(tmp_path, monkeypatch):
    from rnaimg_core.compare import LayoutCheck
    from rnaimg_core.errors import InputError

    folds = [{"repeat": 0, "fold": fold, "generator": generator, "arm": arm, "model": model, "accuracy": score,
              "balanced_accuracy": score, "seconds": 1.0, "n_train": 10, "n_test": 5}
             for fold in range(2)
             for generator, arm, model, score in (("chromosome", "probe", "layout", 0.9),
                                                  ("chromosome", "probe", "permutation", 0.7),
                                                  ("", "flat", "baseline", 0.8))]
    check = LayoutCheck(generators=["chromosome"], folds=folds, n_folds=2, n_repeats=1, arms=("probe",), folds_run=2)
    out = tmp_path / "table.csv"
    out.write_text("an earlier table")
    monkeypatch.setattr("rnaimg_core.outputs.os.replace", lambda *args: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        check.to_csv(out)
    assert out.read_text() == "an earlier table" and [p.name for p in tmp_path.iterdir()] == ["table.csv"]
    monkeypatch.undo()
    check.to_csv(out)
    assert out.read_text() == check.to_csv() and [p.name for p in tmp_path.iterdir()] == ["table.csv"]
    with pytest.raises(InputError, match="Cannot write"):
        check.to_csv(tmp_path / "missing" / "table.csv")


def test_failed_convert_leaves_no_partial_file(tmp_path, layout_file, capsys):
    out = tmp_path / "images.npz"
    (tmp_path / "other.csv").write_text("sample,label,FOO,BAR\nS1,A,1,2\nS2,A,3,4\n")
    assert main(["convert", "--layout", str(layout_file), "--input", str(tmp_path / "other.csv"),
                 "--out", str(out)]) == 2
    assert list(tmp_path.iterdir()) == [tmp_path / "other.csv"]


def test_fill_missing_says_how_much_is_filled(tmp_path, layout_file, capsys):
    import pandas as pd

    from rnaimg_core.expression import load_demo

    demo = load_demo()
    frame = pd.DataFrame(demo.values[:, :30], index=demo.sample_ids, columns=demo.gene_ids[:30])
    frame.insert(0, "label", demo.labels)
    frame.index.name = "sample"
    frame.to_csv(tmp_path / "few.csv")
    assert main(["convert", "--layout", str(layout_file), "--input", str(tmp_path / "few.csv"), "--fill-missing",
                 "--out", str(tmp_path / "i.npz"), "--json"]) == 0
    captured = capsys.readouterr()
    assert "9420 of the layout's 9450 genes (99.7 %)" in captured.err
    from rnaimg_core.images import read_images

    assert np.isfinite(read_images(tmp_path / "i.npz").images).all()


@pytest.fixture
def limits_reset():
    from rnaimg_core.limits import set_limits

    yield
    set_limits(None)  # main() runs in this process: do not leave its --limit behind for other tests


def test_limit_option_is_applied_and_named(tmp_path, capsys, limits_reset):
    assert main(["layout", "--generator", "random", "--out", str(tmp_path / "l.json"),
                 "--limit", "max_cells=1000"]) == 0  # the demo comes from arrays, not a file
    (tmp_path / "m.csv").write_text("sample,label,TP53,EGFR\nS1,A,1,2\nS2,A,3,4\nS3,B,1,1\nS4,B,2,2\n")
    assert main(["layout", "--generator", "random", "--input", str(tmp_path / "m.csv"),
                 "--out", str(tmp_path / "l.json"), "--limit", "max_cells=4"]) == 2
    assert "max_cells" in capsys.readouterr().err
    assert main(["layout", "--generator", "random", "--out", str(tmp_path / "l.json"),
                 "--limit", "max_bananas=4"]) == 2


# ---------------------------------------------------------------- issue 20.1: outputs never replace a device or FIFO

def _fifo_reader(path):
    """A FIFO at ``path`` with a thread reading it; returns (thread, received bytes list)."""
    import threading

    os.mkfifo(path)
    received: list[bytes] = []

    def read():
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # opens at once, so the writer finds a reader
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb") as handle:
            while True:
                chunk = handle.read()
                if chunk:
                    received.append(chunk)
                elif not any(received):
                    import time
                    time.sleep(0.01)  # the writer has not opened it yet
                else:
                    return

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    import time
    time.sleep(0.1)
    return thread, received


def test_layout_to_a_fifo_is_written_through_never_replaced(tmp_path, capsys):
    import json
    import stat

    pipe = tmp_path / "pipe"
    thread, received = _fifo_reader(pipe)
    assert main(["layout", "--generator", "random", "--out", str(pipe)]) == 0
    thread.join(10)
    assert stat.S_ISFIFO(os.stat(pipe).st_mode), "the FIFO became a regular file"
    assert json.loads(b"".join(received))["generator"] == "random"
    assert not list(tmp_path.glob(".pipe*")), "a temporary file was left beside the FIFO"


def test_a_fifo_without_reader_is_refused_not_waited_on(tmp_path, layout_file, capsys):
    import stat

    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    assert main(["convert", "--layout", str(layout_file), "--out", str(pipe)]) == 2
    err = capsys.readouterr().err
    assert "nothing reads from this FIFO" in err and "Traceback" not in err, err
    assert stat.S_ISFIFO(os.stat(pipe).st_mode)


@pytest.mark.skipif(os.geteuid() != 0, reason="creating a device node needs root")
def test_a_character_device_is_written_through(tmp_path, layout_file, capsys):
    """A /dev/null made in tmp_path (never the machine's own): explain, convert and compare write through it."""
    import stat

    null = tmp_path / "null"
    try:
        os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        null.write_bytes(b"x")
    except OSError:
        pytest.skip("device nodes cannot be made or opened here (nodev)")
    for argv in (["convert", "--layout", str(layout_file), "--out", str(null)],
                 ["layout", "--generator", "random", "--out", str(null)]):
        assert main(argv) == 0, argv
        assert stat.S_ISCHR(os.stat(null).st_mode), f"{argv[0]} replaced the device"
    from rnaimg_core.outputs import atomic_output

    with atomic_output(null) as tmp:  # the same function compare's and explain's tables go through
        tmp.write_text("a,b\n1,2\n")
    assert stat.S_ISCHR(os.stat(null).st_mode)


def test_sockets_and_folders_at_device_paths_are_refused(tmp_path, capsys):
    import socket

    from rnaimg_core.errors import InputError
    from rnaimg_core.outputs import check_writable

    path = tmp_path / "sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    try:
        assert main(["layout", "--generator", "random", "--out", str(path)]) == 2
        assert "it is a socket, not a regular file" in capsys.readouterr().err
    finally:
        server.close()
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    with pytest.raises(InputError, match="FIFO"):
        check_writable(pipe, folder=True)  # a model folder or a store cannot be a FIFO


def test_a_symlink_output_replaces_its_target_not_the_link(tmp_path):
    from rnaimg_core.outputs import atomic_output

    target = tmp_path / "real.csv"
    target.write_text("old")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    with atomic_output(link) as tmp:
        tmp.write_text("new")
    assert link.is_symlink() and target.read_text() == "new"


# ---------------------------------------------------------------- issue 20.2 / 20.5: big runs from the command line

@pytest.fixture(scope="module")
def small_cohort(tmp_path_factory, layout_file):
    """60 demo samples as a CSV (samples as rows, labels in a column)."""
    import pandas as pd

    from rnaimg_core.expression import load_demo

    expr = load_demo()
    frame = pd.DataFrame(expr.values[:60], index=pd.Index(expr.sample_ids[:60], name="sample"),
                         columns=expr.gene_ids)
    frame.insert(0, "cell_type", expr.labels[:60])
    path = tmp_path_factory.mktemp("cohort") / "cohort.csv"
    frame.to_csv(path)
    return path, frame


def test_an_unknown_scheduler_address_is_one_clean_line(tmp_path, layout_file, small_cohort, capsys):
    path, _ = small_cohort
    assert main(["convert", "--engine", "dask", "--layout", str(layout_file), "--input", str(path),
                 "--scheduler", "garbage://x", "--out", str(tmp_path / "s.zarr")]) == 2
    err = capsys.readouterr().err
    assert "Could not reach the Dask scheduler at 'garbage://x'" in err and "Traceback" not in err, err


@pytest.fixture(scope="module")
def thread_cluster_address():
    """A Dask cluster of one thread in this process (its address is ``inproc://``): starts in about a second,
    where a cluster of worker processes takes several (the CLI here runs in this process, through ``main``)."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        yield cluster.scheduler_address


@pytest.mark.slow
def test_a_store_of_other_data_under_the_same_ids_is_not_resumed(tmp_path, layout_file, small_cohort, capsys,
                                                                 thread_cluster_address):
    """The issue's case: convert again with different values under the same sample ids onto the same store
    (on a cluster given by address: three local clusters of processes started here took 14 s)."""
    from rnaimg_core.stores import read_store

    path, frame = small_cohort
    data = tmp_path / "cohort.csv"
    frame.to_csv(data)
    out = tmp_path / "images.zarr"
    argv = ["convert", "--engine", "dask", "--scheduler", thread_cluster_address, "--block-size", "20",
            "--layout", str(layout_file), "--input", str(data), "--out", str(out)]
    assert main(argv) == 0
    first = read_store(out).images[:]
    changed = frame.copy()
    changed.iloc[:, 1:] = changed.iloc[:, 1:].to_numpy()[::-1]
    changed.to_csv(data)
    os.utime(data, ns=(1, 1))  # another modification time, as any rewrite gives
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "holds another conversion: the input file changed" in err and "--overwrite" in err, err
    assert np.array_equal(read_store(out).images[:], first)  # complete and untouched
    assert main(argv + ["--overwrite"]) == 0
    again = read_store(out).images[:]
    assert not np.array_equal(again, first)
    np.testing.assert_array_equal(again, first[::-1])  # rows reversed, so the images are too


@pytest.mark.slow
def test_ctrl_c_during_a_dask_conversion_stops_cleanly(tmp_path, layout_file, small_cohort):
    """SIGINT to the whole process group (a terminal's Ctrl-C): exit 130, one line, no worker tracebacks."""
    import signal
    import subprocess
    import sys
    import time

    cohort, _ = small_cohort
    header, *rows = cohort.read_text().splitlines(keepends=True)
    data = tmp_path / "big.csv"  # its 60 samples ten times over, renamed: 600 samples (pandas wrote it in 6 s)
    data.write_text(header + "".join(row.replace(",", f"_{k},", 1) for k in range(10) for row in rows))
    out = tmp_path / "images.zarr"
    argv = [sys.executable, "-m", "rnaimg_core", "convert", "--engine", "dask", "--workers", "1",
            "--block-size", "10", "--layout", str(layout_file), "--input", str(data), "--out", str(out)]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines = []
    deadline = time.monotonic() + 240
    for line in process.stderr:
        lines.append(line)
        if line.startswith("convert: block") or time.monotonic() > deadline:
            break
    os.killpg(process.pid, signal.SIGINT)
    _, rest = process.communicate(timeout=120)
    err = "".join(lines) + rest
    assert process.returncode == 130, err
    assert "Traceback" not in err, err
    assert "left incomplete" in err and err.rstrip().endswith("interrupted"), err
