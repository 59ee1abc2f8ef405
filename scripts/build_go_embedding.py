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
same annotation and library versions gives the same file. Beside it,
``go_embedding_objective.json``: each map's t-SNE objective for the features it
was built from, which ``--check`` (and the test suite) compare with the
objective for the features the installed annotation and code give now.

Usage::

    python scripts/build_go_embedding.py [--out rnaimg_core/data/annotation]
    python scripts/build_go_embedding.py --check    # is the shipped file what the code computes now? (seconds)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from rnaimg_core.annotation import DATA_DIR, ONTOLOGIES  # noqa: E402
from rnaimg_core.generators._embedding import tsne_objective  # noqa: E402
from rnaimg_core.generators.gene_ontology import (  # noqa: E402
    PRECOMPUTED_DECIMALS,
    PRECOMPUTED_SETTINGS,
    check_shipped_embedding,
    embed_genes,
    precomputed_features,
)
from scripts.build_annotation import write_tsv_gz  # noqa: E402


def build(out: Path) -> pd.DataFrame:
    """Embed every annotated gene per ontology; write ``go_embedding.tsv.gz`` and its objectives into ``out``."""
    settings = PRECOMPUTED_SETTINGS
    parts, objectives = [], {}
    for ontology in ONTOLOGIES:
        started = time.perf_counter()
        entrez, vectors = precomputed_features(ontology)
        coords = embed_genes(vectors, settings["embedding"], perplexity=settings["perplexity"],
                             iterations=settings["iterations"], seed=settings["seed"]).round(PRECOMPUTED_DECIMALS)
        parts.append(pd.DataFrame({"ontology": ontology, "entrez_id": entrez, "x": coords[:, 0], "y": coords[:, 1]}))
        # the objective of the map as shipped (rounded), for check_shipped_embedding
        objectives[ontology] = round(tsne_objective(coords, vectors, perplexity=settings["perplexity"],
                                                    seed=settings["seed"]), 6)
        print(f"{ontology}: {entrez.size:,} genes in {time.perf_counter() - started:.0f} s")
    table = pd.concat(parts, ignore_index=True)
    # fixed-point text: the same numbers always print the same way
    for column in ("x", "y"):
        table[column] = table[column].map(lambda v: f"{v:.{PRECOMPUTED_DECIMALS}f}")
    write_tsv_gz(table, out / "go_embedding.tsv.gz")
    (out / "go_embedding_objective.json").write_text(json.dumps(objectives, indent=1) + "\n", encoding="utf-8")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DATA_DIR, help="output folder")
    parser.add_argument("--check", action="store_true",
                        help="only check the shipped file against the annotation and code of this installation")
    args = parser.parse_args(argv)
    if args.check:
        checks = [check_shipped_embedding(ontology) for ontology in ONTOLOGIES]
        for check in checks:
            figures = (f"t-SNE objective {check['objective']:.4f} now, {check['recorded']:.4f} when built"
                       if check["same_genes"] else "other genes than the annotation gives now")
            print(f"{check['ontology']}: {'ok' if check['ok'] else 'STALE'} ({check['n_genes']:,} genes; {figures})")
        return 0 if all(check["ok"] for check in checks) else 1
    table = build(args.out)
    print(f"wrote {len(table):,} rows to {args.out / 'go_embedding.tsv.gz'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
