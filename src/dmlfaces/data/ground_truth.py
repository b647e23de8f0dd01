"""SynthFaces' ground truth (``ground_truth.csv``) joined to the images a chapter or a study looks at.

The file lists every generated image once with its split, identity, media, latent factors, quality and
degradation severities. Features files and protocols name images by file name; this is the one place that
turns those names into ground-truth rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from dmlfaces.data.errors import DataFormatError

GROUND_TRUTH_FILE = "ground_truth.csv"
_FIX = "regenerate the data set with 'dmlfaces synth'"


def split_ground_truth(path: str | Path, split: str, names: Sequence[str], *, columns: Sequence[str] = ()) -> pd.DataFrame:
    """The ground-truth rows of ``split``'s images ``names`` (file names; one may repeat), in that order, indexed
    by file name (index name ``image``).

    Raises:
        DataFormatError: naming the file: it is missing, lacks one of ``columns``, lists an image of the split
            twice (with its line), or lacks one of ``names``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "no SynthFaces ground-truth file", fix=_FIX)
    truth = pd.read_csv(path)
    missing = [column for column in ("split", "path", *columns) if column not in truth.columns]
    if missing:
        raise DataFormatError(path, f"no column {missing[0]!r} ({len(missing)} of the columns needed missing)", fix=_FIX)
    in_split = (truth["split"] == split).to_numpy()
    rows = truth[in_split]
    rows = rows.set_axis(pd.Index(rows["path"].map(lambda p: Path(p).name), name="image"))
    twice = rows.index.duplicated()
    if twice.any():
        line = int(np.flatnonzero(in_split)[np.argmax(twice)]) + 2  # the header is line 1
        raise DataFormatError(
            path,
            f"image {rows.index[np.argmax(twice)]} is listed twice",
            line=line,
            expected=f"each {split} image once",
            fix=_FIX,
        )
    wanted = pd.Index(names)
    absent = wanted.difference(rows.index)
    if len(absent):
        raise DataFormatError(
            path,
            f"lists {len(wanted.unique()) - len(absent)} of the {len(wanted.unique())} images asked "
            f"for (split {split}; e.g. not {absent[0]})",
            fix=f"{_FIX}, or give the features of its images",
        )
    return rows.loc[wanted]
