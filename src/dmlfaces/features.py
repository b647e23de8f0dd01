"""Feature extraction: per-crop unit features and their norms, batched, on the GPU when present.

Output is one file a user can open without this package: ``<name>.npz`` with arrays ``names`` (N,),
``features`` (N, D) float32 unit rows and ``norms`` (N,) float32, ``flip_test`` (a bool: whether ``features``
are of the flip test, the crop's and its mirror's passes averaged, or of single passes), with the flip test also ``single_features`` (N, D) and ``single_norms``
(N,) of the first, unmirrored pass alone (FaceCoresetNet's evaluation has no flip test), and ``skipped`` (M,),
the crops extraction left out on purpose, e.g. for bad landmarks; plus ``<name>.csv`` (name, row, norm) as an
index. Both are written atomically; ``read_features`` checks keys, shapes, finiteness and unit rows, naming
file and key.

Under ``torchrun`` each rank extracts a contiguous share of whole batches and saves it beside the output;
rank 0 merges the shares into the file one process would write.

Its length: extraction, the features file's format (written and read here, and the official pickles),
and the torchrun sharding are one concept, the per-crop features file, kept in one place.
"""

from __future__ import annotations

import csv
import io
import os
import pickle
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from dmlfaces.data.errors import DataFormatError
from dmlfaces.data.transforms import to_input_tensor
from dmlfaces.devices import DistributedContext, resolve_device
from dmlfaces.io import MARKER, atomic_path, atomic_write_text
from dmlfaces.params import AUTO_DEVICE


@dataclass(frozen=True, eq=False)
class FeatureSet:
    """Unit features (N, D) float32, their pre-normalisation norms (N,) and the crop names (N,); ``skipped``
    (M,) names crops left out on purpose, ``path`` the file read (None when built in memory).

    ``flip_test`` says whether ``features`` are of the flip test (the mean of the crop's and its mirror's passes,
    whose norm is the quality) or of single passes; flip-test sets may carry ``single_features`` (N, D) and
    ``single_norms`` (N,) of the unmirrored pass alone.
    """

    names: np.ndarray
    features: np.ndarray
    norms: np.ndarray
    skipped: np.ndarray = field(default_factory=lambda: np.array([], dtype=str))
    path: Path | None = None
    flip_test: bool = True
    single_features: np.ndarray | None = None
    single_norms: np.ndarray | None = None

    def single_pass(self) -> tuple[np.ndarray, np.ndarray]:
        """Unit features (N, D) and norms (N,) of one unmirrored pass per crop, for an evaluation without flip test.

        Raises:
            DataFormatError: the set holds flip-test features only (a file of an earlier version), naming the file.
        """
        if not self.flip_test:
            return self.features, self.norms
        if self.single_features is None or self.single_norms is None:
            raise DataFormatError(
                self.path if self.path is not None else "features (in memory)",
                "holds flip-test features only, but a method is evaluated without the flip test "
                "(aggregator flip_test: false, e.g. the faithful FaceCoresetNet variant)",
                expected="keys 'single_features' and 'single_norms' beside 'features'",
                fix="extract the features again with 'dmlfaces extract' (it keeps the single passes)",
            )
        return self.single_features, self.single_norms


def extract_features(
    backbone: nn.Module,
    load: Callable[[int], np.ndarray],
    count: int,
    *,
    batch_size: int = 256,
    flip: bool = True,
    device: str = AUTO_DEVICE,
    threads: int = 4,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Features of images ``load(0) .. load(count - 1)`` ((112, 112, 3) uint8 RGB each).

    With ``flip`` the feature is the sum of the crop's and its mirror's (the flip test); the norm
    reported is that of the mean of the two, comparable to a single pass.

    Returns:
        unit features (count, D) float32 and norms (count,) float32.
    """
    features, norms, _, _ = _extract(backbone, load, count, batch_size, flip, device, threads, progress, keep_single=False)
    return features, norms


def extract_with_single_pass(
    backbone: nn.Module,
    load: Callable[[int], np.ndarray],
    count: int,
    *,
    batch_size: int = 256,
    flip: bool = True,
    device: str = AUTO_DEVICE,
    threads: int = 4,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``extract_features`` and, at no extra backbone cost, the unit features and norms of the unmirrored pass alone.

    Returns:
        features (count, D), norms (count,), single-pass features (count, D), single-pass norms (count,), all
        float32; without ``flip`` the single pass is the feature itself (the same arrays twice).
    """
    return _extract(backbone, load, count, batch_size, flip, device, threads, progress, keep_single=True)


@torch.no_grad()
def _extract(
    backbone: nn.Module,
    load: Callable[[int], np.ndarray],
    count: int,
    batch_size: int,
    flip: bool,
    device: str,
    threads: int,
    progress: bool,
    keep_single: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """``extract_with_single_pass``; with ``keep_single`` False the single passes of a flip test are not kept
    (None), so a caller that drops them holds no second (count, D) array."""
    target = resolve_device(device)
    backbone = backbone.to(target).eval()
    if target.type == "cuda":
        backbone = backbone.to(memory_format=torch.channels_last)
    amp = torch.bfloat16 if target.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float16
    parts: dict[str, list[np.ndarray]] = {"features": [], "norms": [], "single_features": [], "single_norms": []}

    def keep(raw: torch.Tensor, prefix: str) -> None:
        norm = raw.norm(dim=1)
        parts[prefix + "features"].append((raw / norm.clamp(min=1e-12)[:, None]).cpu().numpy())
        parts[prefix + "norms"].append(norm.cpu().numpy())

    starts = range(0, count, batch_size)
    with ThreadPoolExecutor(threads) as pool:
        for start in tqdm(starts, desc="extract", disable=not progress, mininterval=2.0):
            images = np.stack(list(pool.map(load, range(start, min(start + batch_size, count)))))
            batch = to_input_tensor(images).to(target)
            if target.type == "cuda":
                batch = batch.contiguous(memory_format=torch.channels_last)
            with torch.autocast(target.type, dtype=amp, enabled=target.type == "cuda"):
                raw = backbone(batch).float()
                mirrored = backbone(batch.flip(3)).float() if flip else None
            if flip and keep_single:
                keep(raw, "single_")  # outside autocast, as the flip test's own normalisation below
            if flip:
                raw = (raw + mirrored) / 2
            keep(raw, "")
    joined = {key: np.concatenate(values).astype(np.float32) if values else None for key, values in parts.items()}
    if not flip and keep_single:
        joined["single_features"], joined["single_norms"] = joined["features"], joined["norms"]
    return joined["features"], joined["norms"], joined["single_features"], joined["single_norms"]


def shard_range(count: int, batch_size: int, context: DistributedContext) -> range:
    """This rank's contiguous share of ``range(count)``: whole batches, spread as evenly as they go.

    Cutting at batch boundaries gives every rank exactly the batches one process would run, so the merged
    features equal a single process's (bit for bit on the CPU; on GPUs up to the kernels each picks).
    """
    batches = -(-count // batch_size)
    if batches < context.world_size:
        raise ValueError(
            f"{count} crops make {batches} batches of {batch_size}, fewer than the {context.world_size} "
            "processes: use fewer processes or a smaller --batch-size"
        )
    per_rank, extra = divmod(batches, context.world_size)
    first = context.rank * per_rank + min(context.rank, extra)
    last = first + per_rank + (context.rank < extra)
    return range(first * batch_size, min(last * batch_size, count))


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    """Write ``arrays`` to ``path`` (.npz, no suffix added) atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)


def write_features(
    path: str | os.PathLike[str],
    names: Sequence[str],
    features: np.ndarray,
    norms: np.ndarray,
    skipped: Sequence[str] = (),
    *,
    flip_test: bool = True,
    single: tuple[np.ndarray, np.ndarray] | None = None,
) -> None:
    """Write ``path`` (.npz) and its ``.csv`` index atomically; ``skipped`` names crops left out on purpose.

    Args:
        flip_test: whether ``features`` (N, D) are flip-test sums; single: with the flip test, the unit features
            (N, D) and norms (N,) of the unmirrored pass alone.
    """
    path = Path(path)
    if single is not None and not flip_test:
        raise ValueError(f"{path}: single-pass arrays given for features that are single passes already (flip_test False)")
    arrays = {
        "names": np.asarray(names, dtype=str),
        "features": features.astype(np.float32),
        "norms": norms.astype(np.float32),
        "skipped": np.asarray(list(skipped), dtype=str),
        "flip_test": np.asarray(flip_test),
    }
    if single is not None:
        arrays["single_features"], arrays["single_norms"] = (array.astype(np.float32) for array in single)
    _save_npz(path, **arrays)
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(["name", "row", "norm"])
    writer.writerows((name, row, f"{norm:.6f}") for row, (name, norm) in enumerate(zip(names, norms)))
    atomic_write_text(path.with_suffix(".csv"), table.getvalue())


def _shard_path(path: Path, rank: int) -> Path:
    """Hidden file beside ``path`` for rank ``rank``'s rows; a fixed name carrying the package's marker, so a
    rerun replaces what a failed run left and no file of a user's is ever taken for a shard."""
    return path.with_name(f".{path.name}.{MARKER}shard{rank}")


def _read_shard(path: Path) -> dict[str, np.ndarray]:
    """The arrays (S rows each) saved by one rank."""
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def write_features_sharded(
    path: str | os.PathLike[str],
    names: Sequence[str],
    features: np.ndarray,
    norms: np.ndarray,
    context: DistributedContext,
    skipped: Sequence[str] = (),
    *,
    flip_test: bool = True,
    single: tuple[np.ndarray, np.ndarray] | None = None,
) -> None:
    """``write_features`` of all ranks' rows; ``features`` (S, D), ``norms`` (S,) and ``single`` are this rank's
    ``shard_range``.

    Each rank saves its rows beside ``path``; after a barrier rank 0 concatenates them in rank order (the
    crops' order, shares being contiguous) and writes ``path``; after a second barrier each rank removes its
    own shard, as it does when interrupted or failing. A rank that dies stops the barrier, so nothing reaches
    the final name.
    """
    if not context.distributed:
        write_features(path, names, features, norms, skipped, flip_test=flip_test, single=single)
        return
    path = Path(path)
    rows = {"features": features, "norms": norms}
    if single is not None:
        rows["single_features"], rows["single_norms"] = single
    shard = _shard_path(path, context.rank)
    try:
        _save_npz(shard, **rows)
        dist.barrier()
        if context.is_main:
            parts = [_read_shard(_shard_path(path, rank)) for rank in range(context.world_size)]
            merged = {key: np.concatenate([part[key] for part in parts]) for key in rows}
            write_features(
                path,
                names,
                merged["features"],
                merged["norms"],
                skipped,
                flip_test=flip_test,
                single=(merged["single_features"], merged["single_norms"]) if single is not None else None,
            )
        dist.barrier()  # every shard read before any is removed
    finally:  # each rank removes its own shard, also when interrupted or failing
        shard.unlink(missing_ok=True)


def read_features(path: str | os.PathLike[str]) -> FeatureSet:
    """Read a file written by ``write_features``, checking what every consumer relies on.

    Raises:
        DataFormatError: naming the file and the key: not an npz file, a key missing, ``names`` (N,) not unique
            strings, ``features`` not (N, D) floats, ``norms`` not (N,), a NaN/inf or negative value, or a
            row that is neither unit length nor zero with norm 0.
    """
    path = Path(path)
    fix = "extract the features again with 'dmlfaces extract'"
    try:
        data = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataFormatError(path, "features file is missing", fix=fix) from None
    except (OSError, ValueError, EOFError) as exc:  # not a zip, a truncated zip, a pickled array
        raise DataFormatError(path, f"not a readable .npz features file ({exc})", fix=fix) from None
    with data:
        missing = [key for key in ("names", "features", "norms") if key not in data.files]
        if missing:
            raise DataFormatError(
                path,
                f"key {missing[0]!r} is missing (the file holds {sorted(data.files)})",
                expected="arrays 'names' (N,), 'features' (N, D) and 'norms' (N,)",
                fix=fix,
            )
        single_keys = [key for key in ("single_features", "single_norms") if key in data.files]
        if len(single_keys) == 1:
            other = ({"single_features", "single_norms"} - set(single_keys)).pop()
            raise DataFormatError(
                path,
                f"key {other!r} is missing beside {single_keys[0]!r}",
                expected="both single-pass arrays or neither",
                fix=fix,
            )
        try:
            names, features, norms = data["names"], data["features"], data["norms"]
            skipped = data["skipped"] if "skipped" in data.files else np.array([], dtype=str)
            flip_test = data["flip_test"] if "flip_test" in data.files else np.asarray(True)  # earlier files: flip test
            single = (data["single_features"], data["single_norms"]) if single_keys else None
        except (OSError, ValueError, EOFError) as exc:  # a corrupt member, or an object array
            raise DataFormatError(path, f"an array cannot be read ({exc})", fix=fix) from None
    if flip_test.shape != () or flip_test.dtype != bool:
        raise DataFormatError(
            path, f"key 'flip_test': {flip_test.dtype} array of shape {flip_test.shape}", expected="one bool", fix=fix
        )
    if single is not None and not flip_test:
        raise DataFormatError(
            path,
            "holds single-pass arrays beside features that are single passes already (flip_test false)",
            expected="'single_features' and 'single_norms' only with the flip test",
            fix=fix,
        )
    return _checked_feature_set(path, names, features, norms, skipped, fix, flip_test=bool(flip_test), single=single)


def _checked_feature_set(
    path: Path,
    names: np.ndarray,
    features: np.ndarray,
    norms: np.ndarray,
    skipped: np.ndarray,
    fix: str,
    keys: dict[str, str] | None = None,
    flip_test: bool = True,
    single: tuple[np.ndarray, np.ndarray] | None = None,
) -> FeatureSet:
    """The arrays of a features file as a ``FeatureSet``, after every check ``read_features`` promises; errors
    name ``path`` and the key (``keys`` renames them as the file spells them)."""

    def refuse(key: str, problem: str, expected: str) -> NoReturn:
        raise DataFormatError(path, f"key {(keys or {}).get(key, key)!r}: {problem}", expected=expected, fix=fix)

    if names.ndim != 1 or names.dtype.kind != "U" or len(names) == 0:
        refuse("names", f"{names.dtype} array of shape {names.shape}", "(N,) crop names as strings, N >= 1")
    if skipped.ndim != 1 or (len(skipped) and skipped.dtype.kind != "U"):
        refuse("skipped", f"{skipped.dtype} array of shape {skipped.shape}", "(M,) crop names as strings")
    unique, counts = np.unique(names, return_counts=True)
    if (counts > 1).any():
        twice = np.flatnonzero(names == unique[np.argmax(counts > 1)])
        refuse("names", f"crop {str(names[twice[0]])!r} is listed in rows {twice[0]} and {twice[1]}", "each crop once")
    _check_rows(refuse, names, "features", features, "norms", norms)
    if single is not None:
        _check_rows(refuse, names, "single_features", single[0], "single_norms", single[1])
        if single[0].shape != features.shape:
            refuse("single_features", f"shape {single[0].shape}", f"the shape of 'features', {features.shape}")
    return FeatureSet(
        names=names,
        features=features,
        norms=norms,
        skipped=skipped,
        path=path,
        flip_test=flip_test,
        single_features=None if single is None else single[0],
        single_norms=None if single is None else single[1],
    )


def _check_rows(
    refuse: Callable[[str, str, str], NoReturn],
    names: np.ndarray,
    features_key: str,
    features: np.ndarray,
    norms_key: str,
    norms: np.ndarray,
) -> None:
    """Refuse (through ``refuse(key, problem, expected)``) features that are not (N, D) finite unit rows (zero
    rows only where the norm is 0) or norms that are not (N,) finite and >= 0, N being ``len(names)``."""
    count = len(names)
    if features.ndim != 2 or features.shape[0] != count or features.shape[1] == 0 or features.dtype.kind != "f":
        refuse(features_key, f"{features.dtype} array of shape {features.shape}", f"({count}, D) floats, D >= 1")
    if norms.shape != (count,) or norms.dtype.kind != "f":
        refuse(norms_key, f"{norms.dtype} array of shape {norms.shape}", f"({count},) floats")
    for key, values in ((features_key, features), (norms_key, norms)):
        finite = np.isfinite(values).reshape(count, -1).all(axis=1)
        if not finite.all():
            row = int(np.argmin(finite))
            refuse(
                key,
                f"{np.count_nonzero(~finite)} rows have NaN or infinite values, first row {row} (crop {str(names[row])!r})",
                "finite values",
            )
    if (norms < 0).any():
        row = int(np.argmax(norms < 0))
        refuse(norms_key, f"row {row} (crop {str(names[row])!r}) is negative", "norms >= 0")
    as_float32 = features.astype(np.float32, copy=False)  # no float64 copy of IJB-C's 1 GB of features
    lengths = np.sqrt(np.einsum("nd,nd->n", as_float32, as_float32))
    # A crop whose network output is zero has a zero row and norm 0; any other row is unit length.
    off = np.where(norms > 0, np.abs(lengths - 1) > 1e-3, lengths != 0)
    if off.any():
        row = int(np.argmax(off))
        refuse(
            features_key,
            f"row {row} (crop {str(names[row])!r}) has length {lengths[row]:.6g} with norm {norms[row]:.6g}",
            "unit rows (zero rows only where the norm is 0)",
        )


# The globals a pickle of NumPy arrays names (NumPy 1 and 2 spell the module differently); nothing else is loaded.
_ARRAY_GLOBALS = (
    {(module, name) for module in ("numpy.core.multiarray", "numpy._core.multiarray") for name in ("_reconstruct", "scalar")}
    | {("numpy", "ndarray"), ("numpy", "dtype")}
    | {(module, "_frombuffer") for module in ("numpy.core.numeric", "numpy._core.numeric")}
)  # pickle protocol 5
OFFICIAL_PICKLE_KEYS = ("img_feats", "norms", "faceness_scores")


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles dicts and NumPy arrays only: a pickle naming any other callable is refused, not run."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) in _ARRAY_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"it names {module}.{name}, which is not part of a NumPy array")


def read_official_feature_pickle(path: str | os.PathLike[str], crop_names: np.ndarray) -> FeatureSet:
    """The IJB-B/C features the official FaceCoresetNet repository distributes, as a ``FeatureSet``.

    Its ``validate_IJB_BC_compute_templates.py`` reads ``<DATASET>_ir101_webface4m.pickle``: a dict with
    ``img_feats`` (N, D) float32 unit rows of the AdaFace IR-101 backbone (no flip test), ``norms`` (N, 1) their
    norms and ``faceness_scores`` (N,), row i for line i of ``meta/<name>_name_5pts_score.txt``.

    Args:
        crop_names: (N,) the protocol's crop name of each row (``IJBProtocol.crop_names``); a crop that several
            rows list must have the same features in each, and is returned once.
    Raises:
        DataFormatError: naming the file and what was expected.
    """
    path = Path(path)
    expected = (
        f"a pickled dict with {', '.join(OFFICIAL_PICKLE_KEYS)}: img_feats ({len(crop_names)}, D) unit rows and "
        f"norms ({len(crop_names)}, 1), one row per line of the protocol's name_5pts_score.txt"
    )
    fix = "give the official IJBB/IJBC feature pickle of the protocol passed as --ijb, or extract with 'dmlfaces extract'"
    try:
        with open(path, "rb") as handle:
            data = _ArrayUnpickler(handle).load()
    except FileNotFoundError:
        raise DataFormatError(path, "feature pickle is missing", fix=fix) from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise DataFormatError(path, f"not a feature pickle of NumPy arrays ({exc})", expected=expected, fix=fix) from None
    if not isinstance(data, dict) or not {"img_feats", "norms"} <= set(data):
        found = sorted(map(str, data)) if isinstance(data, dict) else type(data).__name__
        raise DataFormatError(path, f"holds {found}", expected=expected, fix=fix)
    features, norms = data["img_feats"], data["norms"]
    if not isinstance(features, np.ndarray) or not isinstance(norms, np.ndarray):
        raise DataFormatError(path, "img_feats and norms are not NumPy arrays", expected=expected, fix=fix)
    if norms.ndim == 2 and norms.shape[1] == 1:
        norms = norms[:, 0]
    if len(features) != len(crop_names) or len(norms) != len(crop_names):
        raise DataFormatError(
            path,
            f"img_feats has {len(features)} rows and norms {len(norms)}, but the protocol lists {len(crop_names)} crops",
            expected=expected,
            fix=fix,
        )
    crop_names = np.asarray(crop_names, dtype=str)
    _, first, crop_of_row = np.unique(crop_names, return_index=True, return_inverse=True)
    if len(first) < len(crop_names):  # real IJB lists every crop once; SynthFaces' templates share crops
        differs = np.flatnonzero((features != features[first[crop_of_row]]).any(axis=1))
        if len(differs):
            row = int(differs[0])
            raise DataFormatError(
                path,
                f"img_feats row {row} (crop {str(crop_names[row])!r}) differs from row "
                f"{first[crop_of_row[row]]}, the crop's first",
                expected="the same features in every row of one crop",
                fix=fix,
            )
        rows = np.sort(first)  # each crop once, at its first row, in file order
        crop_names, features, norms = crop_names[rows], features[rows], norms[rows]
    return _checked_feature_set(
        path, crop_names, features, norms, np.array([], dtype=str), fix, keys={"features": "img_feats"}, flip_test=False
    )
