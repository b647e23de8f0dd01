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
REGENERATE = "regenerate the data set with 'dmlfaces synth'"  # the advice of every ground-truth error


def split_ground_truth(
    path: str | Path,
    split: str,
    names: Sequence[str],
    *,
    columns: Sequence[str] = (),
    images_of: str | Path | None = None,
    fix: str | None = None,
) -> pd.DataFrame:
    """The ground-truth rows of ``split``'s images ``names`` (file names; one may repeat), in that order, indexed
    by file name (index name ``image``).

    Args:
        columns: columns the caller needs besides ``split`` and ``path``.
        images_of: where ``names`` come from (a data set's directory), named when an image is not listed;
            by default they are named as the images asked for (a features file's).
        fix: what every error advises (the caller's own way out, e.g. running without ground truth); by default,
            regenerating the data set, or for an image not listed, giving the features of the data set's images.
    Raises:
        DataFormatError: naming the file: it is missing, lacks one of the columns, lists an image of the split
            twice (with its line), or lacks one of ``names``.
    """
    path = Path(path)
    # Names from a data set's folder (images_of) cannot be mended by other features; a features file's can.
    absent_fix = fix or (REGENERATE if images_of is not None else f"{REGENERATE}, or give the features of its images")
    fix = fix or REGENERATE
    if not path.is_file():
        raise DataFormatError(path, "no SynthFaces ground-truth file", fix=fix)
    truth = pd.read_csv(path)
    needed = list(dict.fromkeys(("split", "path", *columns)))  # a caller may list split or path itself
    missing = [column for column in needed if column not in truth.columns]
    if missing:
        raise DataFormatError(
            path, f"no column {missing[0]!r} ({len(missing)} of the {len(needed)} columns needed missing)", fix=fix
        )
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
            fix=fix,
        )
    wanted = pd.Index(names)
    absent = wanted.difference(rows.index)
    if len(absent):
        asked = f"of {images_of}" if images_of is not None else "asked for"
        raise DataFormatError(
            path,
            f"lists {len(wanted.unique()) - len(absent)} of the {len(wanted.unique())} images {asked} "
            f"(split {split}; e.g. not {absent[0]})",
            fix=absent_fix,
        )
    return rows.loc[wanted]
