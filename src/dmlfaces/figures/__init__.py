"""The book's figures, one module per subject; every chapter saves them with ``save_figure``.

- ``data``: SynthFaces itself (gallery, attribute toggles, quality, a clip's burst), chapter 01.
- ``training``: training losses of the embedding and the aggregators, chapters 02 and 03.
- ``verification``: ROC and DET curves (one implementation for every chapter), the coreset's picks.
- ``embedding``: 2-D maps of embeddings (t-SNE) and the feature norm against quality, chapters 02 and 05.
- ``attributes``: Study A's factor heat maps and per-identity accuracy histograms, chapter 05.
- ``summary``: the summary pages' TAR intervals (the one interval plot), attribute accuracy, the pipeline and
  its stage times; imports no torch and no chapter module, so a change to a chapter's figure does not rerun
  the summary pages (their DVC stage depends on this file alone).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from dmlfaces.io import atomic_path


def save_figure(fig: plt.Figure, path: str | Path) -> None:
    """Save a figure as PNG (fixed metadata so reruns give the same bytes)."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, metadata={"Software": None}, bbox_inches="tight")
