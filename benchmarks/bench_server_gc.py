"""What Streamlit's collection after every page run costs the dashboard server, without and with the freeze.

Streamlit runs a full garbage collection after every page run (``runner.postScriptGC``, on by default) so
that cyclic garbage is freed before the next job asks the memory budget for room. Its cost grows with
every object the process holds, and the dashboard's stack (torch, pandas, plotly, scikit-learn, the
library) is about 390,000 of them. ``dashboard.memory.freeze_startup_objects`` (called by ``app.py`` at the
top of the first page run) moves the objects alive then out of the collector's sight.

One fresh process, side by side: the stack imported as a page imports it, the demo loaded, its
chromosome layout fitted and one sample image drawn as the Layout page draws it. Then ``gc.collect(2)``
is timed ``--repeats`` times after a page run's worth of fresh garbage (another figure) without the
freeze, then the same with it. Reported: medians, and their ratio.

Usage::

    python benchmarks/bench_server_gc.py --repeats 7 --json benchmarks/results_server_gc.json
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def page_run(layout, images):
    """A page run's transient objects: one sample image figure, as the Layout page builds it."""
    from dashboard.figures import image_figure

    return image_figure(images[0], layout.pixel_labels()[0])


def timed_collections(repeats: int, layout, images) -> list[float]:
    seconds = []
    for _ in range(repeats):
        figure = page_run(layout, images)
        del figure
        started = time.perf_counter()
        gc.collect(2)
        seconds.append(time.perf_counter() - started)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)

    import dashboard.glue  # noqa: F401 (what a page imports)
    from dashboard.memory import freeze_startup_objects
    from rnaimg_core.expression import load_demo
    from rnaimg_core.generators import fit_layout

    demo = load_demo()
    layout = fit_layout(demo, "chromosome")
    images = layout.transform(demo.values[:4])
    tracked = len(gc.get_objects())
    without = timed_collections(args.repeats, layout, images)
    freeze_startup_objects()
    frozen = gc.get_freeze_count()
    with_freeze = timed_collections(args.repeats, layout, images)
    result = {"objects_tracked": tracked, "objects_frozen": frozen, "repeats": args.repeats,
              "collect_seconds_without": statistics.median(without),
              "collect_seconds_with_freeze": statistics.median(with_freeze),
              "ratio": statistics.median(without) / max(statistics.median(with_freeze), 1e-9)}
    print(f"{tracked:,} objects tracked, {frozen:,} frozen; gc.collect(2) after a page run: "
          f"{result['collect_seconds_without'] * 1e3:.1f} ms without the freeze, "
          f"{result['collect_seconds_with_freeze'] * 1e3:.2f} ms with it ({result['ratio']:.0f} x faster), "
          f"medians of {args.repeats}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
