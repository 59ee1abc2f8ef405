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
