"""Counts of a data set in the real layouts, read back through the package's own readers.

Reading the output with the readers (not trusting the generator's manifest) is what proves that one
reader serves the synthetic and the real data alike.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dmlfaces.data.celeba import read_celeba
from dmlfaces.data.folders import read_image_folder
from dmlfaces.data.ijb import read_ijb


def dataset_summary(data_dir: str | Path) -> dict[str, int]:
    """Counts of the IJBS protocol, the CelebA-layout set and the training folder under ``data_dir``
    (``ijb_crops``: distinct images; ``ijb_rows``: template rows, a crop counted once per template listing it;
    ``ijb_subjects``: 0 without 1:N lists)."""
    data_dir = Path(data_dir)
    protocol = read_ijb(data_dir / "IJBS")
    celeba = read_celeba(data_dir / "celeba")
    train = read_image_folder(data_dir / "train")
    labels = protocol.pair_labels
    return {
        "ijb_crops": len(protocol.unique_crops),
        "ijb_rows": protocol.num_crops,
        "ijb_subjects": len(np.unique(protocol.template_subjects()[1])) if protocol.one_to_n else 0,
        "ijb_templates": len(protocol.unique_templates),
        "ijb_media": len(np.unique(protocol.media_ids)),
        "ijb_genuine_pairs": int(labels.sum()),
        "ijb_impostor_pairs": int(len(labels) - labels.sum()),
        "celeba_images": len(celeba.attributes),
        "celeba_identities": int(celeba.identities.nunique()),
        "train_identities": len(train.identities),
        "train_images": len(train.paths),
    }
