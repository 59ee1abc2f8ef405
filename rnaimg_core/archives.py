"""Table layouts of public archives that need one more step than "ids, then values".

TCGA's Broad Firehose (GDAC) level-3 RNA-seq files carry two header rows: sample barcodes, then, under
each, the quantity in that column. ``…RSEM_genes__data.data.txt`` repeats every barcode three times
(``raw_count``: RSEM expected counts; ``scaled_estimate``; ``transcript_id``), the ``RSEM_isoforms``
file twice, the older ``RPKM`` files three times (``raw_counts``, ``median_length_normalized``,
``RPKM``); the ``…normalized…`` files once (``normalized_count``). :func:`firehose_quantity` keeps the
columns of one quantity, by :data:`FIREHOSE_PREFERENCE` (the counts, which rnaimg scales per million
itself), and says which.
"""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

import pandas as pd

from rnaimg_core.errors import InputError

FIREHOSE_ROW_IDS = ("gene_id", "composite element ref", "isoform_id", "gene", "transcript_id")
FIREHOSE_PREFERENCE = ("raw_count", "raw_counts", "normalized_count", "scaled_estimate", "rpkm",
                       "median_length_normalized")
FIREHOSE_WORDS = {
    "raw_count": "RSEM expected counts",
    "raw_counts": "read counts",
    "normalized_count": "RSEM counts normalised to the upper quartile",
    "scaled_estimate": "RSEM's estimated fraction of transcripts",
    "rpkm": "RPKM",
    "median_length_normalized": "median-length-normalised counts",
}


def firehose_quantity(frame: pd.DataFrame, name: str) -> tuple[pd.DataFrame, str | None]:
    """Keep one quantity's columns of a Firehose table (two header rows), or return ``frame`` unchanged.

    Parameters
    ----------
    frame : a table as read, ids in the index, the first header row as column names
    name : the file's name, for messages

    Returns
    -------
    frame : the chosen quantity's columns without the second header row (values still as read)
    note : what was kept and left out, or None when the table is not of this layout
    """
    if frame.shape[0] < 2 or str(frame.index[0]).strip().lower() not in FIREHOSE_ROW_IDS:
        return frame, None
    kinds = frame.iloc[0].astype(str).str.strip()
    known = kinds.str.lower().isin(FIREHOSE_PREFERENCE) | (kinds.str.lower() == "transcript_id")
    if not known.all():
        return frame, None
    present = set(kinds.str.lower())
    chosen = next((q for q in FIREHOSE_PREFERENCE if q in present), None)
    if chosen is None:
        raise InputError(f"{name}: a two-row header naming only {', '.join(sorted(present))}; no expression "
                         "quantity to read.")
    keep = (kinds.str.lower() == chosen).to_numpy()
    body = frame.iloc[1:, keep]
    left_out = sorted(present - {chosen})
    note = (f"TCGA Firehose layout (two header rows): the {chosen} columns ({FIREHOSE_WORDS[chosen]}) were read"
            + (f"; {', '.join(left_out)} left out" if left_out else ""))
    return body, note


# ---------------------------------------------------------------- GEO series matrix: the samples' annotation

GEO_SAMPLE_FIELDS = {"!Sample_title": "title", "!Sample_source_name_ch1": "source_name",
                     "!Sample_description": "description"}


def geo_samples(path: Path, name: str, *, max_bytes: int) -> pd.DataFrame | None:
    """The per-sample annotation of a GEO series matrix (``!Sample_…`` lines above the table), or None.

    Returns a table indexed by GSM accession with ``title``, ``source_name``, ``description`` and one
    column per ``!Sample_characteristics_ch1`` key (``tissue: tumor`` gives a ``tissue`` column); a
    characteristics line without ``key:`` is named ``characteristics_N``. Reads at most ``max_bytes``
    of text (the metadata lines only; it stops at the table).
    """
    import zlib

    from rnaimg_core.limits import CappedReader

    with open(path, "rb") as handle:
        compressed = handle.read(2) == b"\x1f\x8b"
    rows: list[list[str]] = []
    try:
        with (gzip.open(path, "rb") if compressed else open(path, "rb")) as raw, \
                io.TextIOWrapper(io.BufferedReader(CappedReader(raw, max_bytes, name)), encoding="utf-8",
                                 errors="replace", newline="") as text:
            first = text.readline()
            if not first.startswith(("!", "^")):
                return None
            for line in [first, *text]:
                if line.lower().startswith("!series_matrix_table_begin") or not line.startswith(("!", "^")):
                    break
                if line.startswith("!Sample_"):
                    rows.append(next(csv.reader([line.rstrip("\r\n")], delimiter="\t")))
    except (EOFError, OSError, zlib.error, csv.Error):  # a damaged file: the table reader says what is wrong
        return None
    accessions = next((r[1:] for r in rows if r[0] == "!Sample_geo_accession"), None)
    if not accessions:
        return None
    table = pd.DataFrame(index=pd.Index([a.strip() for a in accessions], name="sample"))
    n_unnamed = 0
    for row in rows:
        cells = [c.strip() for c in row[1:]]
        if len(cells) != len(accessions):
            continue
        if row[0] in GEO_SAMPLE_FIELDS:
            table[GEO_SAMPLE_FIELDS[row[0]]] = cells
        elif row[0] == "!Sample_characteristics_ch1":
            keys = {c.split(":", 1)[0].strip() for c in cells if ":" in c}
            if len(keys) == 1 and all(":" in c or not c for c in cells):
                key = keys.pop()
                table[key] = [c.split(":", 1)[1].strip() if ":" in c else "" for c in cells]
            else:
                n_unnamed += 1
                table[f"characteristics_{n_unnamed}"] = cells
    return table


def geo_label_sheet(path: Path, name: str, label_column: str | None,
                    max_bytes: int) -> tuple[pd.Series | None, dict | None]:
    """Labels for a GEO series matrix from its samples' annotation: (sample sheet, note), or (None, None).

    ``label_column`` names a column of :func:`geo_samples` (a characteristics key such as ``tissue``,
    or ``source_name``); without it a column with a usual label name (``cell type``, ``tumor type``,
    ``disease`` …) is used when there is one. The note lists the columns with an example each.
    """
    from rnaimg_core.expression import guess_label_column

    table = geo_samples(path, name, max_bytes=max_bytes)
    if table is None or table.shape[1] == 0:
        return None, None
    note = {"columns": {c: str(table[c].iloc[0]) for c in table.columns}}
    if label_column is not None:
        if label_column not in table.columns:
            raise InputError(f"{name}: label column {label_column!r} not found; this GEO series matrix describes "
                             f"its samples by {', '.join(map(repr, table.columns))}.")
        column = label_column
    else:
        by_key = {str(c).strip().lower().replace(" ", "_"): c for c in table.columns}
        guess = guess_label_column(list(by_key))
        if guess is None:
            note["hint"] = ("no column with a usual label name: choose one as the label column, or give a "
                            "sample sheet")
            return None, note
        column = by_key[guess]
    labels = table[column].astype(str).str.strip()
    labels = labels[labels != ""]
    note["label_column"] = str(column)
    return pd.Series(labels.to_numpy(), index=labels.index.to_numpy(), name=str(column)), note
