"""Training image folders: ``<root>/<identity>/<image>.jpg``, one folder per identity.

The layout of aligned WebFace4M subsets, CASIA-WebFace and VGGFace2 after alignment, and of
SynthFaces' ``train/``. Listing uses ``os.scandir`` so that millions of files list in seconds.
Hidden entries (``.DS_Store``, macOS ``._x.jpg`` forks) are skipped everywhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dmlfaces.data.errors import DataFormatError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True, eq=False)
class ImageFolder:
    """Images of an identity-per-folder tree, in a deterministic order (sorted folders, sorted files).

    Attributes:
        paths: N image paths.
        labels: (N,) int64 index into ``identities``.
        identities: sorted folder names.
    """

    root: Path
    paths: list[Path]
    labels: np.ndarray
    identities: list[str]


def read_image_folder(root: str | os.PathLike[str], extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> ImageFolder:
    """List an identity-per-folder image tree; file extensions match case-insensitively.

    Raises:
        DataFormatError: the root is missing, holds a file at its top level (a sign of a wrong root) or
            no identity folders, or an identity folder holds no images.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataFormatError(root, "image folder root does not exist",
                              expected="a directory of <identity>/<image> files",
                              fix="point the reader at the directory whose sub-directories are the identities")
    with os.scandir(root) as entries:
        listed = sorted((e for e in entries if not e.name.startswith(".")), key=lambda e: e.name)
    stray = [e.name for e in listed if not e.is_dir()]
    if stray:
        raise DataFormatError(root / stray[0], "file at the top level of an image folder",
                              expected="only one sub-directory per identity",
                              fix="move the file into its identity's folder, or point the reader one level deeper")
    if not listed:
        raise DataFormatError(root, "no identity folders", expected="<root>/<identity>/<image>.jpg",
                              fix="point the reader at the directory whose sub-directories are the identities")
    paths: list[Path] = []
    labels: list[np.ndarray] = []
    lowered = tuple(ext.lower() for ext in extensions)
    for label, entry in enumerate(listed):
        with os.scandir(entry.path) as files:
            names = sorted(f.name for f in files
                           if not f.name.startswith(".") and f.name.lower().endswith(lowered) and f.is_file())
        if not names:
            raise DataFormatError(entry.path, "identity folder holds no images",
                                  expected=f"files ending in {', '.join(extensions)}",
                                  fix="remove the empty folder or add its images")
        directory = Path(entry.path)
        paths.extend(directory / name for name in names)
        labels.append(np.full(len(names), label, dtype=np.int64))
    return ImageFolder(root=root, paths=paths, labels=np.concatenate(labels), identities=[e.name for e in listed])
