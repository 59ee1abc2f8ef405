"""The layout check in a background thread (progress over folds, a stop button), and its chart.

The page polls :attr:`LayoutCheckJob.progress` and :attr:`LayoutCheckJob.running`
and sets :attr:`LayoutCheckJob.stop_event` when the user presses Stop; the
finished folds are kept (:func:`rnaimg_core.compare.check_layouts` drops only the
fold in progress).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from rnaimg_core.budget import layout_check_bytes
from rnaimg_core.compare import HELPS, HURTS, LayoutCheck, check_layouts
from rnaimg_core.errors import InputError
from rnaimg_core.expression import Expression
from rnaimg_core.generators import Generator
from rnaimg_core.model import TrainSettings

from dashboard.memory import admit_job

VERDICT_COLOURS = {HELPS: "#1a9850", HURTS: "#d73027"}   # anything else: grey ("no evidence")
MODEL_COLOURS = {"layout": "#3366cc", "random control": "#999999", "baseline": "#ff9900"}


@dataclass(frozen=True)
class CheckPlan:
    """What the user asked for: generators (configured), folds, repeats, budget, training settings."""

    generators: tuple[Generator, ...]
    n_folds: int
    n_repeats: int
    time_budget: float | None
    settings: TrainSettings
    seed: int = 0


class LayoutCheckJob(threading.Thread):
    """One call of :func:`rnaimg_core.compare.check_layouts` in a daemon thread.

    Parameters
    ----------
    expression : the session's labelled data
    data_key : the data's cache key (a result for other data is not shown as current)
    plan : generators, folds, repeats, time budget and training settings
    """

    def __init__(self, expression: Expression, data_key: str, plan: CheckPlan):
        super().__init__(name="rnaimg-layout-check", daemon=True)
        self.expression = expression
        self.data_key = data_key
        self.plan = plan
        self.progress: list[dict] = []
        self.result: LayoutCheck | None = None
        self.error: BaseException | None = None  # handed to the page: InputError shown, anything else raised
        self.stop_event = threading.Event()
        self.stopped_because: str | None = None  # set when the server stopped it (dashboard.jobs), not the user

    def start(self) -> "LayoutCheckJob":
        """Start the check once the server's memory budget admits it (:mod:`dashboard.memory`); returns the job.

        When the budget stays used up the check does not start and ``error`` says why (an InputError)."""
        expr = self.expression
        try:
            self._ticket = admit_job(layout_check_bytes(expr.n_samples, expr.n_genes), "the layout check")
        except InputError as exc:
            self.error = exc
            return self
        super().start()
        return self

    def run(self) -> None:
        plan = self.plan
        try:
            self.result = check_layouts(self.expression, list(plan.generators), settings=plan.settings,
                                        n_folds=plan.n_folds, n_repeats=plan.n_repeats,
                                        time_budget=plan.time_budget, seed=plan.seed,
                                        progress=self.progress.append, should_stop=self.stop_event)
        except BaseException as exc:
            self.error = exc
        finally:
            self._ticket.release()

    @property
    def running(self) -> bool:
        """True while the check runs (:meth:`join` waits for it)."""
        return self.is_alive()

    def status(self) -> tuple[float, str]:
        """(fraction of models trained, a line: folds done of planned and the time left)."""
        if not self.progress:
            return 0.0, "Fitting the first fold's layouts…"
        last = self.progress[-1]
        text = (f"fold {last['folds_done']} of {last['folds_planned']} done · about {last['eta']:.0f} s left · "
                f"{last['message']}")
        if self.stop_event.is_set():
            text += " · stopping (finished folds are kept)…"
        return last["done"] / max(1, last["total"]), text


def check_figure(check: LayoutCheck) -> go.Figure:
    """Balanced accuracy with its interval per generator, control and baseline; and layout − control.

    Left: each generator's CNN, the same CNN on the layout's random permutation and the
    flat baseline, mean over folds with the corrected 95 % interval. Right: the paired
    difference layout − control with its interval, coloured by the verdict; the dashed
    line at 0 is "no difference".
    """
    fig = make_subplots(rows=1, cols=2, column_widths=[0.6, 0.4], horizontal_spacing=0.18,
                        subplot_titles=("Balanced accuracy over folds (95 % interval)",
                                        "Layout − random permutation (95 %)"))
    summaries = {name: check.generator_summary(name) for name in check.generators}
    rows = [(name, "layout", s["layout"]) for name, s in summaries.items()]
    rows += [(name, "random control", s["random_control"]) for name, s in summaries.items()]
    if summaries:
        rows.append(("flat baseline", "baseline", next(iter(summaries.values()))["baseline"]))
    for model in ("layout", "random control", "baseline"):
        picked = [(name, stats) for name, m, stats in rows if m == model]
        fig.add_trace(_interval_trace([name if model != "random control" else f"{name} (random)"
                                       for name, _ in picked],
                                      [stats["balanced_accuracy"] for _, stats in picked],
                                      [stats["balanced_accuracy_ci"] for _, stats in picked],
                                      MODEL_COLOURS[model], model), row=1, col=1)
    diffs = [(name, s["difference_vs_control"], s["verdict"]) for name, s in summaries.items()]
    for name, diff, verdict in diffs:
        fig.add_trace(_interval_trace([name], [diff["mean"]], [diff["ci"]], VERDICT_COLOURS.get(verdict, "#777777"),
                                      verdict, legend=False), row=1, col=2)
    fig.add_vline(x=0, line_dash="dash", line_color="#555555", row=1, col=2)
    fig.update_xaxes(range=[0, 1.02], title_text="balanced accuracy", row=1, col=1)
    fig.update_xaxes(title_text="difference in balanced accuracy", row=1, col=2)
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(height=160 + 60 * len(rows), margin=dict(l=10, r=10, t=60, b=40),
                      legend=dict(orientation="h", y=-0.25))
    return fig


def _interval_trace(names: list[str], means: list, intervals: list, colour: str, label: str, *,
                    legend: bool = True) -> go.Scatter:
    plus = [None if ci is None or mean is None else ci[1] - mean for mean, ci in zip(means, intervals)]
    minus = [None if ci is None or mean is None else mean - ci[0] for mean, ci in zip(means, intervals)]
    return go.Scatter(x=means, y=names, mode="markers", name=label, showlegend=legend,
                      marker=dict(size=11, color=colour),
                      error_x=dict(type="data", symmetric=False, array=plus, arrayminus=minus, thickness=2,
                                   width=6, color=colour),
                      hovertemplate="%{y}: %{x:.3f}<extra>" + label + "</extra>")
