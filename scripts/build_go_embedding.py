"""Precompute the Gene Ontology embedding of every annotated human gene, for the shipped bundle.

The ``gene_ontology`` layout (embedding style) places genes by a t-SNE of their
IDF-weighted GO term profiles. That depends only on the annotation, so it is
computed here once, for every gene of the shipped gene table with a GO
annotation, per ontology (BP, MF, CC), with the generator's default settings
(:data:`rnaimg_core.generators.gene_ontology.PRECOMPUTED_SETTINGS`). A fit then
looks up the user's genes instead of embedding them.

Output: ``rnaimg_core/data/annotation/go_embedding.tsv.gz`` with columns
``ontology, entrez_id, x, y`` (coordinates rounded to
``PRECOMPUTED_DECIMALS`` decimals), rows sorted, gzip mtime 0: rerunning on the
same annotation and library versions gives the same file.

Usage::

    python scripts/build_go_embedding.py [--out rnaimg_core/data/annotation]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from rnaimg_core.annotation import DATA_DIR, ONTOLOGIES  # noqa: E402
from rnaimg_core.generators.gene_ontology import PRECOMPUTED_DECIMALS, PRECOMPUTED_SETTINGS, embed_universe  # noqa: E402
from scripts.build_annotation import write_tsv_gz  # noqa: E402


def build(out: Path) -> pd.DataFrame:
    """Embed every annotated gene per ontology and write ``go_embedding.tsv.gz`` into ``out``."""
    parts = []
    for ontology in ONTOLOGIES:
        started = time.perf_counter()
        entrez, coords = embed_universe(ontology, **PRECOMPUTED_SETTINGS)
        parts.append(pd.DataFrame({"ontology": ontology, "entrez_id": entrez,
                                   "x": coords[:, 0].round(PRECOMPUTED_DECIMALS),
                                   "y": coords[:, 1].round(PRECOMPUTED_DECIMALS)}))
        print(f"{ontology}: {entrez.size:,} genes in {time.perf_counter() - started:.0f} s")
    table = pd.concat(parts, ignore_index=True)
    # fixed-point text: the same numbers always print the same way
    for column in ("x", "y"):
        table[column] = table[column].map(lambda v: f"{v:.{PRECOMPUTED_DECIMALS}f}")
    write_tsv_gz(table, out / "go_embedding.tsv.gz")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DATA_DIR, help="output folder")
    args = parser.parse_args(argv)
    table = build(args.out)
    print(f"wrote {len(table):,} rows to {args.out / 'go_embedding.tsv.gz'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
