"""Training image folders: ``<root>/<identity>/<image>.jpg``, one folder per identity, and clip folders.

The layout of aligned WebFace4M subsets, CASIA-WebFace and VGGFace2 after alignment, and of
SynthFaces' ``train/``. Listing uses ``os.scandir`` so that millions of files list in seconds.
Hidden entries (``.DS_Store``, macOS ``._x.jpg`` forks) are skipped everywhere.
"""

from __future__ import annotations

import hashlib
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

    def digest(self) -> str:
        """MD5 of every image's relative path and size: an added, removed or changed image changes it, moving
        the folder does not.

        Sizes rather than contents (one ``stat`` per image, no reads), so that a WebFace4M-sized folder need
        not be read through; an edit that keeps every file's size exactly is not seen.
        """
        digest = hashlib.md5()
        for path in self.paths:
            digest.update(f"{path.relative_to(self.root).as_posix()}\0{path.stat().st_size}\n".encode())
        return digest.hexdigest()


def read_image_folder(
    root: str | os.PathLike[str], extensions: tuple[str, ...] = IMAGE_EXTENSIONS, kind: str = "identity"
) -> ImageFolder:
    """List an identity-per-folder image tree; file extensions match case-insensitively.

    ``kind`` names what a sub-directory is in error messages (``clip`` inside a clip folder).

    Raises:
        DataFormatError: the root is missing, holds a file at its top level (a sign of a wrong root) or
            no identity folders, or an identity folder holds no images.
    """
    root = Path(root)
    listed = _subdirectories(root, kind)
    paths: list[Path] = []
    labels: list[np.ndarray] = []
    lowered = tuple(ext.lower() for ext in extensions)
    for label, entry in enumerate(listed):
        with os.scandir(entry.path) as files:
            names = sorted(
                f.name for f in files if not f.name.startswith(".") and f.name.lower().endswith(lowered) and f.is_file()
            )
        if not names:
            raise DataFormatError(
                entry.path,
                f"{kind} folder holds no images",
                expected=f"files ending in {', '.join(extensions)}",
                fix="remove the empty folder or add its images",
            )
        directory = Path(entry.path)
        paths.extend(directory / name for name in names)
        labels.append(np.full(len(names), label, dtype=np.int64))
    return ImageFolder(root=root, paths=paths, labels=np.concatenate(labels), identities=[e.name for e in listed])


def _subdirectories(root: Path, kind: str) -> list[os.DirEntry]:
    """The sorted, non-hidden sub-directories of ``root`` (one per ``kind``); anything else there is an error."""
    if not root.is_dir():
        raise DataFormatError(
            root,
            "image folder root does not exist",
            expected=f"a directory of <{kind}>/... folders",
            fix=f"point the reader at the directory whose sub-directories are the {kind} folders",
        )
    with os.scandir(root) as entries:
        listed = sorted((e for e in entries if not e.name.startswith(".")), key=lambda e: e.name)
    stray = [e.name for e in listed if not e.is_dir()]
    if stray:
        raise DataFormatError(
            root / stray[0],
            f"file at the top level of a directory of {kind} folders",
            expected=f"only one sub-directory per {kind}",
            fix=f"move the file into its {kind}'s folder, or point the reader one level deeper",
        )
    if not listed:
        raise DataFormatError(
            root,
            f"no {kind} folders",
            expected=f"<{kind}>/... sub-directories",
            fix=f"point the reader at the directory whose sub-directories are the {kind} folders",
        )
    return listed


@dataclass(frozen=True, eq=False)
class ClipFolder:
    """Video frames of an ``<identity>/<clip>/<frame>`` tree (the YouTube Faces frame layout), sorted.

    Attributes:
        paths: F frame paths; the frames of a clip are contiguous and in file-name order.
        clips: (F,) int64 clip index of each frame (0 .. C-1, increasing).
        clip_identities: C identity folder names, one per clip.
    """

    root: Path
    paths: list[Path]
    clips: np.ndarray
    clip_identities: list[str]


def read_clip_folder(root: str | os.PathLike[str], extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> ClipFolder:
    """List an ``<identity>/<clip>/<frame>.jpg`` tree; each identity folder is an image folder of clips.

    Raises:
        DataFormatError: as :func:`read_image_folder`, at either level (naming the folder at fault).
    """
    root = Path(root)
    paths: list[Path] = []
    clips: list[np.ndarray] = []
    clip_identities: list[str] = []
    for identity in _subdirectories(root, "identity"):
        frames = read_image_folder(identity.path, extensions, kind="clip")
        clips.append(frames.labels + len(clip_identities))
        paths.extend(frames.paths)
        clip_identities.extend([identity.name] * len(frames.identities))
    return ClipFolder(root=root, paths=paths, clips=np.concatenate(clips), clip_identities=clip_identities)
