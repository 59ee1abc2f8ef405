"""Streamlit glue the pages share: the session's state, page setup, cached steps.

Everything that computes lives in ``rnaimg_core``; this module only decides
what is cached where:

- ``st.cache_data`` for deterministic steps keyed by content: the demo and
  synthetic data, the data report. ``st.cache_resource`` for the large arrays
  pages only read (images of a layout, class means, hover text): ``cache_data``
  would hand every rerun a fresh copy of the whole image stack. Keys start with
  the data key (``"demo"``, ``"synthetic:..."`` or a hash of the uploaded
  bytes), so a session only ever hits entries for data it holds itself.
- ``st.session_state`` (one :class:`~dashboard.state.AppState`) for the
  session's data, fitted layouts and trained model. Layout fits are cached
  there, not in ``st.cache_data``, because a fit draws a live progress bar and
  Streamlit's cache would replay those progress elements on a cache hit.
"""

from __future__ import annotations

import io
import json
import re
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np
import streamlit as st
from streamlit import runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

from rnaimg_core import expression as rx
from rnaimg_core import readers
from rnaimg_core.errors import InputError
from rnaimg_core.generators import get_generator
from rnaimg_core.images import class_difference_images, class_mean_images, write_images
from rnaimg_core.layout import Layout
from rnaimg_core.limits import check_images
from rnaimg_core.splits import layout_split

from dashboard import memory
from dashboard.figures import hover_labels
from dashboard.jobs import JOBS, Busy
from dashboard.navigation import ensure_app_navigation
from dashboard.state import AppState, Recent, made_from, restored_text
from dashboard.training import TrainingJob
from dashboard.widgets import keep_widget_values, param_key
from dashboard.workspace import MAX_TOTAL_BYTES, MAX_WORKSPACES, ORIGIN_FILE, TOKEN_PARAM, TTL_SECONDS, Workspace

STATE_KEY = "rnaimg_state"
FORK_NOTICE_KEY = "rnaimg_fork_notice"  # the message of fork_workspace, shown on every page until dismissed
STORAGE_STATEMENT = (
    "An upload is read in this server's memory. So that a reload restores your work, the server also keeps "
    "a copy of the uploaded file(s), your choices, your fitted layouts and your trained model in a private "
    "folder of its temporary directory, named by a hash of your session's address (the `?s=` token); other "
    f"users never see it. It is removed {TTL_SECONDS // 3600} hours after your last use, sooner when the "
    f"server needs room (all sessions together keep at most {MAX_WORKSPACES} folders and "
    f"{MAX_TOTAL_BYTES / 2**30:g} GB; the least recently used go first), and at once with the button "
    "“Delete this session's data now” on the Data page.")


def get_state() -> AppState:
    """This session's state, its private token in the URL and its workspace on the server.

    A new browser session whose URL carries the token of a live workspace (a
    reload, or the address pasted into a new tab) gets that work back: data,
    choices, fitted layouts and the trained model. Otherwise the demo data are
    loaded so every page has images.
    """
    if STATE_KEY not in st.session_state:
        st.session_state[STATE_KEY] = AppState()
    state: AppState = st.session_state[STATE_KEY]
    if state.workspace is None:
        token = st.query_params.get(TOKEN_PARAM)
        workspace = Workspace.open(token) if token else None
        if workspace is not None and state.expression is None:
            with st.spinner("Restoring your session…"):
                restore(state, workspace)
        elif token:
            st.toast(f"That session has expired (work is kept {TTL_SECONDS // 3600} h after its last use) or "
                     "is unknown; starting afresh.")
        state.workspace = workspace or Workspace.create()
        if state.expression is not None and workspace is None:
            state.workspace.save_origin({**state.origin, "data_key": state.data_key})  # set up before it (tests)
        if workspace is not None and state.expression is not None:
            reattach_jobs(state)  # a reload during a run: its progress, then its result
    if st.query_params.get(TOKEN_PARAM) != state.workspace.token:
        st.query_params[TOKEN_PARAM] = state.workspace.token  # page switches drop query parameters
    if state.expression is None:
        with st.spinner("Loading the demo data…"):
            use_data(state, demo_expression(), "demo", {"kind": "demo"})
    show_fork_notice()  # from an earlier run: a message that vanished at the next click would be missed
    persist(state)
    return state


def show_fork_notice() -> None:
    """The warning of :func:`fork_workspace`, kept at the top of every page until the user dismisses it."""
    notice = st.session_state.get(FORK_NOTICE_KEY)
    if notice:
        st.warning(notice)
        st.button("Dismiss", key="w_dismiss_fork_notice", on_click=st.session_state.pop, args=(FORK_NOTICE_KEY, None))


def use_data(state: AppState, expression: rx.Expression, data_key: str, origin: dict,
             files: dict[str, bytes | None] | None = None) -> None:
    """Switch the session to new data and keep how they were made (and an upload's bytes) in its workspace."""
    memory.keep_data(expression)  # counted in the server's budget while the session keeps them
    st.session_state.pop(FORK_NOTICE_KEY, None)  # the notice named the data this tab had kept
    state.set_data(expression, data_key, origin)
    if state.workspace is not None:
        state.workspace.save_origin({**origin, "data_key": data_key}, files)


def persist(state: AppState) -> None:
    """Write what changed (choices, new layouts, a finished model) to the session's workspace."""
    workspace = state.workspace
    if workspace is None:
        return
    if state.expression is not None and _saved_data_key(workspace) not in (None, state.data_key):
        workspace = fork_workspace(state)  # another tab on this address loaded other data
    workspace.save_choices(state.choices())
    if set(state.layouts) != workspace.saved_layouts:
        workspace.save_layouts(dict(state.layouts))
    job = state.training
    if job is not None and not job.running and job.result is not None:
        workspace.save_model(job.result, job.layout_key, job.settings)
    workspace.touch()


def delete_session_data(state: AppState) -> None:
    """Delete what this session keeps on the server (upload, choices, layouts, model) and start afresh on the
    demo data under a new token."""
    if state.workspace is not None:
        state.workspace.delete()
    state.workspace = Workspace.create()
    st.query_params[TOKEN_PARAM] = state.workspace.token
    use_data(state, demo_expression(), "demo", {"kind": "demo"})


def restore(state: AppState, workspace: Workspace) -> None:
    """Rebuild a session from its workspace; parts that cannot be rebuilt are skipped with a message."""
    saved = workspace.origin()
    if saved is None:
        return
    origin, files = saved
    if origin.get("kind") not in ("demo", "synthetic", "upload"):
        return  # data put in by other means (tests): nothing to rebuild them from
    data_key = str(origin.get("data_key", "demo"))
    try:
        expression = make_data(origin, files)
    except InputError as exc:
        st.error(f"Your earlier data could not be read again ({exc}); using the demo data.")
        return
    memory.keep_data(expression)
    state.set_data(expression, data_key, origin)
    state.restore_choices(workspace.choices())
    kept = [f"data ({expression.source})", "choices"]
    layouts = workspace.layouts()
    # every layout and model is checked against the data it was made from: another tab on the same address
    # may have saved work on other data (it then gets its own address, see fork_workspace)
    mixed = 0
    for key, layout in layouts.items():
        if made_from(layout, expression):
            state.layouts.remember(key, layout)
        else:
            mixed += 1
    if len(layouts) > mixed:
        kept.append(f"{len(layouts) - mixed} layout(s)")
    model = workspace.model()
    if model is not None:
        result, layout_key, settings = model
        if made_from(result.model.layout, expression):
            state.training = TrainingJob.finished(result, layout_key, settings)
            kept.append("the trained model")
        else:
            mixed += 1
    if mixed:
        st.warning(f"{mixed} saved layout(s) or model(s) of this session were made from other data than "
                   f"{expression.source} (another tab on the same address?) and were not restored.")
    if origin.get("kind") == "upload":
        st.session_state.setdefault("w_data_source", "Upload a file")
    st.toast("Your session was restored: " + ", ".join(kept) + ".")


def _saved_data_key(workspace: Workspace) -> str | None:
    """The data key the workspace's saved data are under (None when nothing is saved or unreadable)."""
    try:
        return json.loads((workspace.folder / ORIGIN_FILE).read_text()).get("data_key")
    except (OSError, ValueError, AttributeError):
        return None


def fork_workspace(state: AppState) -> Workspace:
    """Give this tab a workspace (and address) of its own: another tab on the same address saved other data.

    Both tabs keep working on their own data; a reload of either restores its own work, never a mix.
    """
    old = state.workspace
    new = Workspace.create()
    new.save_origin({**state.origin, "data_key": state.data_key}, None)  # an upload's bytes went with the change
    JOBS.move(old.token, new.token, [state.training, state.layout_check], new.folder)
    state.workspace = new
    st.query_params[TOKEN_PARAM] = new.token
    upload = " After a reload it will start from the demo data: its upload was replaced." \
        if state.origin.get("kind") == "upload" else ""
    notice = ("Another tab with this session's address loaded other data. This tab keeps its own data "
              f"({state.expression.source}) and work under a new address (now in the address bar), so the two "
              "tabs no longer mix." + upload)
    st.warning(notice)
    st.session_state[FORK_NOTICE_KEY] = notice
    return new


def _session_id() -> str:
    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else ""


def _session_alive(session_id: str) -> bool:
    """Whether the browser session ``session_id`` is still connected (True where no server runs: AppTest)."""
    try:
        return runtime.get_instance().is_active_session(session_id)
    except RuntimeError:
        return True


JOBS.is_alive = _session_alive


def start_job(state: AppState, kind: str, job):
    """Start a long run (``"train"`` or ``"compare"``) for this session, kept under its token so a reload
    attaches to it (:mod:`dashboard.jobs`); returns the job.

    Raises
    ------
    dashboard.jobs.Busy
        When this session already runs one, or the server runs its most.
    """
    job.data_key = state.data_key
    return JOBS.start(state.workspace.token, kind, job, session_id=_session_id(), folder=state.workspace.folder)


def start_job_or_stop(state: AppState, kind: str, job):
    """:func:`start_job`, or, when this session or the server is busy, the reason as a warning and the page
    run stopped (what the Train and Compare pages do with a refused run)."""
    try:
        return start_job(state, kind, job)
    except Busy as exc:
        st.warning(str(exc))
        st.stop()


PROGRESS_SECONDS = 1.0  # a running job's progress bar is redrawn this often (see follow_job)


def follow_job(job, bar, on_update: Callable[[], None] | None = None) -> None:
    """Show a running ``job``'s progress in ``bar`` (and call ``on_update``) about once a second until it
    ends, then rerun the page, which shows the result.

    Each redraw makes the browser lay the whole page out again (about 0.1 s of a core on a small machine;
    redrawn four times a second, it kept the reader's browser 40 % busy for the whole run). The wait ends
    the moment the job does, so the result is not delayed; a click (Stop) interrupts the wait as any rerun does.
    """
    while job.running:
        fraction, text = job.status()
        bar.progress(min(1.0, fraction), text=text)
        if on_update is not None:
            on_update()
        job.join(PROGRESS_SECONDS)
    st.rerun()


def reattach_jobs(state: AppState) -> None:
    """A new browser session of a token (a reload) takes over its runs: in progress or finished since."""
    found = JOBS.attach(state.workspace.token, _session_id())
    for kind, attr, what in (("train", "training", "training run"), ("compare", "layout_check", "layout check")):
        job = found.get(kind)
        if job is None or job is getattr(state, attr):
            continue
        if job.data_key != state.data_key:
            st.warning(f"This session's {what} {'in progress' if job.running else 'of late'} was made on other "
                       "data (another tab on the same address) and is not shown here.")
            continue
        setattr(state, attr, job)
        if job.running:
            st.toast(f"Attached to your {what} in progress.")


def make_data(origin: dict, files: dict[str, bytes]) -> rx.Expression:
    """The data an origin describes: the demo, seeded synthetic data, or an upload read again from its bytes."""
    kind = origin.get("kind")
    if kind == "synthetic":
        return synthetic_expression(*(int(v) for v in origin["args"]))
    if kind == "upload" and "matrix" not in files:
        raise InputError("the uploaded file is no longer kept on the server (another tab of this session "
                         "loaded other data)")
    if kind == "upload":
        gene_map = None
        if files.get("gene_map") is not None:
            from rnaimg_core.gene_map import read_gene_map_bytes

            gene_map = memory.read_upload(files["gene_map"], origin.get("gene_map_filename") or "gene map",
                                          reader=read_gene_map_bytes)
        return memory.read_upload(  # within the server's memory budget
            files["matrix"], origin["filename"], labels=files.get("sheet"),
            labels_filename=origin.get("labels_filename"), label_column=origin.get("label_column"),
            orientation=origin.get("orientation", "auto"), gene_map=gene_map,
            collapse=origin.get("collapse", "auto"))
    return demo_expression()


def page_setup(title: str) -> None:
    """First call of every page: app navigation, wide layout, title, widget memory across pages."""
    ensure_app_navigation()  # a first visit straight to a page's address still gets app.py's navigation
    st.set_page_config(page_title=f"{title} · rnaimg", page_icon="🧬", layout="wide")
    keep_widget_values()


def quality_samples_text(quality: dict) -> str:
    """Which samples a layout's quality figures were measured on, in words (``holdout (n=37)`` →
    ``the 37 held-out samples``)."""
    samples = str(quality.get("quality_samples", "the samples the layout was fitted on"))
    match = re.fullmatch(r"holdout \(n=(\d+)\)", samples)
    if match:
        return f"the {int(match.group(1)):,} held-out samples"
    return samples.replace("fit samples", "the samples the layout was fitted on", 1)


def start_page(title: str, *, caption: bool = True) -> AppState:
    """The top of every page: set-up, title, this session's state and (by default) the data line."""
    page_setup(title)
    st.title(title)
    state = get_state()
    if caption:
        data_caption(state)
    return state


def current_images(state: AppState) -> tuple[str, Layout, np.ndarray]:
    """The layout chosen on the Layout page (fitted now if needed), its cache key and the images."""
    key, layout = fit_or_stop(state, state.generator)
    return key, layout, layout_images(key, layout, state.expression)


def data_caption(state: AppState) -> None:
    """One line naming the data in use."""
    expr = state.expression
    st.caption(f"Data: **{expr.source}** — {expr.n_samples:,} samples × {expr.n_genes:,} genes, "
               f"{len(expr.classes)} classes. Change it on the Data page.")


# ---------------------------------------------------------------- cached data

@st.cache_data(max_entries=1, show_spinner=False)
def demo_expression() -> rx.Expression:
    """The demo data (:func:`rnaimg_core.expression.load_demo`)."""
    return rx.load_demo()


@st.cache_data(max_entries=4, show_spinner=False)
def synthetic_expression(n_samples: int, n_genes: int, n_classes: int, seed: int) -> rx.Expression:
    """Seeded synthetic data (:func:`rnaimg_core.expression.load_synthetic`)."""
    return rx.load_synthetic(n_samples=n_samples, n_genes=n_genes, n_classes=n_classes, seed=seed)


# ---------------------------------------------------------------- layouts

# Fit times at demo size (184 samples x 9,450 genes) on a busy 2-core machine, in seconds, rounded up
# from the "fit s" column of benchmarks/bench_switch.py (benchmarks/README.md, "Dashboard generator
# switch": the dashboard's own first fits; gene_ontology's first fit in a process also reads the shipped
# embedding). A fit expected to take longer than CONFIRM_SECONDS waits for the user's go: at demo size
# none does. Once this server has fitted a generator on data of comparable size (within a factor
# COMPARABLE of the cells), those measured fits replace the table; data of other sizes use the table,
# scaled by samples x genes: a small fit's fixed overhead is never stretched to large data.
DEMO_CELLS = 184 * 9450
EXPECTED_DEMO_SECONDS = {"chromosome": 0.1, "deepmapper": 0.1, "random": 0.1, "som": 2.0,
                         "gene_ontology": 2.0, "deepinsight": 5.0, "stack": 6.5}
CONFIRM_SECONDS = 8.0
COMPARABLE = 2.0
MAX_MEASURED = 8  # most recent fits kept per generator
# generator -> (cells, seconds) of its last fits on this server: sizes and times only, no data of any session
_measured: dict[str, list[tuple[float, float]]] = {}
_measured_lock = threading.Lock()


def record_fit(name: str, n_samples: int, n_genes: int, seconds: float) -> None:
    """Remember that generator ``name`` took ``seconds`` on data of this size (for :func:`expected_seconds`)."""
    with _measured_lock:
        fits = _measured.setdefault(name, [])
        fits.append((float(n_samples) * float(n_genes), float(seconds)))
        del fits[:-MAX_MEASURED]


def expected_seconds(name: str, n_samples: int, n_genes: int) -> float:
    """Expected fit time of generator ``name`` on data of this size.

    The median of this server's fits of that generator on comparable sizes (each scaled by its cells, at most
    a factor :data:`COMPARABLE` either way), else the demo-size table scaled by samples x genes.
    """
    cells = max(1.0, float(n_samples) * float(n_genes))
    with _measured_lock:
        fits = list(_measured.get(name, []))
    comparable = [seconds * cells / size for size, seconds in fits if 1 / COMPARABLE <= cells / size <= COMPARABLE]
    if comparable:
        return float(np.median(comparable))
    return EXPECTED_DEMO_SECONDS.get(name, 5.0) * cells / DEMO_CELLS


def confirm_fit(state: AppState, name: str, container=None) -> bool:
    """Whether generator ``name`` may be fitted now: quick fits always; slow ones once the user said go.

    A slow fit shows its expected time and a button instead of starting at once.
    """
    if state.layouts.recall(state.layout_key(name)) is not None:
        return True
    expr = state.expression
    seconds = expected_seconds(name, expr.n_samples, expr.n_genes)
    go_key = f"w_btn_fit_{name}_{state.layout_key(name)}"
    if seconds < CONFIRM_SECONDS or st.session_state.get(go_key):
        return True
    place = container if container is not None else st
    title = get_generator(name).title
    place.info(f"Fitting **{title}** on {expr.n_samples:,} samples × {expr.n_genes:,} genes is expected to take "
               f"about {_duration(seconds)}. It runs on the server; you can leave this page open meanwhile.")
    return bool(place.button(f"Fit {title} now", key=go_key, type="primary"))


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def fit_layout(state: AppState, name: str, *, container=None) -> tuple[str, Layout]:
    """The session's layout for generator ``name`` with its current parameters.

    Fits it (with a progress bar and the time left in ``container``) only when this
    session has not fitted exactly these data and parameters before.

    Raises
    ------
    InputError
        When the generator cannot build a layout for these data.
    """
    params = state.generator_params(name)
    key = state.layout_key(name, params)
    layout = state.layouts.recall(key)
    if layout is None and public_data(state.data_key):
        layout = _shared_fit(key)  # the same fit of the same public data by another session
        if layout is not None:
            state.layouts.remember(key, layout)
            persist(state)
    if layout is not None:
        return key, layout
    cls = get_generator(name)
    place = container if container is not None else st.empty()
    bar = place.progress(0.0, text=f"Fitting {cls.title}…")
    started = time.monotonic()

    def progress(fraction: float, message: str) -> None:
        fraction = float(min(1.0, max(0.0, fraction)))
        elapsed = time.monotonic() - started
        left = f" · about {_duration(elapsed * (1 - fraction) / fraction)} left" if 0.05 <= fraction < 1 else ""
        bar.progress(fraction, text=(f"{cls.title}: {message}" if message else cls.title) + left)

    asked = (params.get("channels") or 1, params["height"], params["width"]) \
        if params.get("height") and params.get("width") else None
    try:
        with memory.fitting(state.expression, asked, cls.title):  # admitted by the server's memory budget
            layout = cls(**params).fit(state.expression, train_index=state.fit_index, progress=progress)
    finally:
        place.empty()
    expr = state.expression
    record_fit(name, expr.n_samples, expr.n_genes, time.monotonic() - started)
    state.layouts.remember(key, layout)
    if public_data(state.data_key):
        _shared_fit(key, layout)
    persist(state)
    return key, layout


# Fits of public data (the demo, seeded synthetic data) are the same for every session: kept once per server,
# so a new session opens its first page without fitting again. Never an upload's: those stay in their session.
MAX_SHARED_FITS = 8
_shared_fits: Recent = Recent(MAX_SHARED_FITS)
_shared_lock = threading.Lock()


def public_data(data_key: str) -> bool:
    """Whether ``data_key`` names data every session may see (the demo, seeded synthetic data)."""
    return data_key == "demo" or data_key.startswith("synthetic:")


def _shared_fit(key: str, layout: Layout | None = None) -> Layout | None:
    """The server's fit under layout ``key`` (a layout of public data), or None; with ``layout``, keep it."""
    with _shared_lock:
        if layout is not None:
            return _shared_fits.remember(key, layout)
        return _shared_fits.recall(key)


def fit_or_stop(state: AppState, name: str, *, container=None) -> tuple[str, Layout]:
    """:func:`fit_layout` once :func:`confirm_fit` allows it (the page stops while a slow fit waits for the
    user's go).

    On bad input (an image too large, a generator that does not apply) the failure does not stick: the
    generator's last parameters that fitted are restored (:meth:`AppState.restore_good`; its defaults
    when none has), the page runs again with them, so their layout is shown again, and the library's
    message, naming the restored values, is shown once where this generator's layout is drawn next.
    Only when there is nothing to go back to does the page show the message and stop.
    """
    place = container if container is not None else st
    notice = state.recovered.pop(name, None)
    if not confirm_fit(state, name):
        if notice:
            place.error(notice)
        st.stop()
    try:
        params = state.generator_params(name)
        if params.get("height") and params.get("width"):  # a size asked for: refuse it before fitting
            asked = (params.get("channels", 1), params["height"], params["width"])
            check_images(state.expression.n_samples, asked)
            memory.check_drawable(state.expression.n_samples, asked)  # within the server's memory budget
        key, layout = fit_layout(state, name, container=container)
        check_images(state.expression.n_samples, layout.shape)  # every page draws images of all samples
        memory.check_drawable(state.expression.n_samples, layout.shape)
    except InputError as exc:
        title = get_generator(name).title
        changes = state.restore_good(name)
        if not changes:
            st.error(f"{title}: {exc}")
            st.stop()
        for pname in changes:  # the parameter widgets show the restored values on the rerun
            st.session_state.pop(param_key(name, pname), None)
        good = "last parameters that fitted" if name in state.good_params else "default parameters"
        state.recovered[name] = f"{title}: {exc} Back to the {good}: {restored_text(changes)}."
        persist(state)
        st.rerun()
    state.remember_good(name)
    if notice:
        place.error(notice)
    return key, layout


@st.cache_data(max_entries=4, show_spinner=False)
def data_report(data_key: str, _expression: rx.Expression) -> dict:
    """:meth:`Expression.report` of the data ``data_key`` (several passes over the matrix: once per data)."""
    return _expression.report()


@st.cache_resource(max_entries=12, show_spinner=False)  # read-only arrays: no copy per rerun
def layout_images(key: str, _layout: Layout, _expression: rx.Expression) -> np.ndarray:
    """Images of every sample under the layout ``key``, shape (n, C, H, W); drawn once the server's memory budget
    admits them, and counted in it while cached."""
    return memory.drawing(_expression.n_samples, _layout.shape,
                          lambda: _layout.transform(_expression.values, _expression.gene_ids, device="cpu"))


@st.cache_resource(max_entries=12, show_spinner=False)  # read-only arrays: no copy per rerun
def hover_text(key: str, _layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    """(hover labels, empty mask) per pixel, each (C, H, W), built once per layout."""
    return hover_labels(_layout.pixel_labels(), _layout.region_grid()), _layout.genes_per_pixel == 0


@st.cache_resource(max_entries=12, show_spinner=False)  # read-only arrays: no copy per rerun
def class_images(key: str, _images: np.ndarray, labels: tuple[str, ...]) -> dict:
    """Class means and class-minus-rest images of the layout ``key``: {"classes", "means", "diffs"}."""
    classes, means = class_mean_images(_images, labels)
    _, diffs = class_difference_images(_images, labels)
    return {"classes": classes, "means": means, "diffs": diffs}


@st.cache_resource(max_entries=8, show_spinner=False)
def _shared_figure(cache_key: tuple, _build):
    return _build()


def figure_for(state: AppState, cache_key: tuple, build):
    """``build()`` (a figure), kept once per server for public data: a new session's first view of the demo
    (the same layout, samples and options) is drawn without building the same figure again. ``cache_key`` must
    name everything the figure depends on besides the layout key's data and parameters."""
    if not public_data(state.data_key):
        return build()
    return _shared_figure(cache_key, build)


# ---------------------------------------------------------------- downloads
# Pages hand st.download_button a callable (functools.partial of these, or a bound method such as
# Layout.to_json): the file is built only when the button is clicked, not on every rerun. Streamlit
# runs it on another thread without the page's context, so these are plain functions: no st calls,
# no Streamlit caches.

def images_file_bytes(images: np.ndarray, layout: Layout, sample_ids: list, labels: list | None) -> bytes:
    """The images file ``rnaimg train`` reads (:func:`rnaimg_core.images.write_images`), as bytes: the same
    members as ``rnaimg convert`` writes, the split included (samples the layout was fitted on ``fit``, the
    others ``holdout``: :func:`rnaimg_core.splits.layout_split`, as the CLI decides it), so ``rnaimg train``
    and ``rnaimg explain`` on it test on the held-out samples.

    Parameters
    ----------
    images : shape (n, C, H, W), the images of ``layout``
    layout : the layout the images were made with
    sample_ids, labels : one per image (labels may be None)
    """
    split = layout_split(layout.fit_sample_ids or [], np.asarray(sample_ids))
    with tempfile.TemporaryDirectory(prefix="rnaimg-images-") as tmp:
        return write_images(Path(tmp) / "images.npz", images, sample_ids, labels, layout, split=split).read_bytes()


def npy_bytes(array: np.ndarray) -> bytes:
    """``array`` as the bytes of an ``.npy`` file (:func:`numpy.save`)."""
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def csv_text(frame) -> str:
    """A DataFrame as CSV text without its index."""
    return frame.to_csv(index=False)


def clicked_pixel(event) -> tuple[int, int] | None:
    """(row, col) of the pixel clicked in ``event`` (what ``st.plotly_chart(on_select=...)`` returns), or None.

    The points come from :func:`dashboard.figures.pixel_click_trace`, whose x is the column and y the row.
    """
    selection = event.get("selection", {}) if isinstance(event, dict) else getattr(event, "selection", None)
    points = (selection.get("points") if isinstance(selection, dict) else getattr(selection, "points", None)) or []
    for point in points:
        if point.get("x") is not None and point.get("y") is not None:
            return int(round(float(point["y"]))), int(round(float(point["x"])))
    return None


# Well-known genes named in the landing page's "how an image is made" (markers of glia, cycling and immune cells).
TEACHING_GENES = ("EGFR", "OLIG2", "SOX2", "GFAP", "PDGFRA", "MKI67", "CD74", "APOE", "MBP", "TP53", "MYC", "ACTB")


def named_genes(layout: Layout, image: np.ndarray, n: int = 6) -> list[tuple[str, float, int, int]]:
    """Up to ``n`` well-known genes placed on channel 0 as (symbol, pixel value, row, col), sorted by row."""
    out = []
    upper = {}
    for index, name in enumerate(np.char.upper(layout.display_names.astype(str))):  # one pass, not one per gene
        upper.setdefault(str(name), []).append(index)
    for symbol in TEACHING_GENES:
        for channel, row, col in layout.gene_coordinates(upper.get(symbol, []))[:1]:
            if channel == 0 and len(out) < n:
                out.append((symbol, float(image[0, row, col]), int(row), int(col)))
    if len(out) < n:  # other data: the first placed genes, spread over the image
        placed = layout.placed_genes()
        for gene in placed[np.linspace(0, placed.size - 1, num=n - len(out) + 2).astype(int)[1:-1]]:
            for channel, row, col in layout.gene_coordinates([gene])[:1]:
                if channel == 0:
                    out.append((str(layout.display_names[gene]), float(image[0, row, col]), int(row), int(col)))
    return sorted(out, key=lambda g: g[2])
