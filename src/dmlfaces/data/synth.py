"""SynthFaces: the package's own face benchmark, written in the real public layouts.

``synthesize(out, preset, seed)`` renders identities with :mod:`dmlfaces.data.faces` and writes

* ``IJBS/`` : an IJB-B/C-style 1:1 and 1:N protocol (``loose_crop/*.jpg`` + ``meta/ijbs_*``), templates
  mixing stills and video clips (bursts of near-duplicate frames). As in IJB-B, whose 227,630 template rows
  come from about 77,000 distinct stills and frames, a subject's media are reused across its templates: each
  media (a still, or a clip's frames) is rendered once and listed by every template that draws it, so
  genuine pairs multiply without rendering more faces. A genuine pair joins two templates that share no media;
  impostor pairs are sampled from all cross-subject template pairs;
* ``celeba/``: a CelebA-layout attribute set (``img_align_celeba/``, the four text files);
* ``train/<identity>/<image>.jpg``: a training image folder, each face warped from its 5 landmarks onto the
  ArcFace template as WebFace4M's and MS1M's crops were, so training sees the same alignment as extraction;
* ``train_clips/<identity>/<clip>/<frame>.jpg``: video clips of the training identities (the YouTube Faces
  frame layout, aligned the same way), for training set aggregators on real bursts of near-duplicate frames;
* ``ground_truth.csv``: every image (once, however many templates list it) with its identity, media (its
  templates are in the protocol; ``template_id`` is -1 for IJBS crops), all latent factors, the quality and
  the severity of each degradation it is made of (``severity_*``), and its 5 landmarks in the written image
  (for ``train/`` and ``train_clips/`` after the warp; their framing factors ``image_scale``, ``image_shift_*``
  and ``image_roll`` describe the photo before it);
* ``synthfaces.json``: the preset, the seed and the counts.

Determinism: identity ``g`` draws its factors from the stream ``(seed, PERSON, g)`` and image key ``k`` of
it from ``(seed, IMAGE, g, *k)``, so the same preset and seed give byte-identical files and adding
people changes no existing person. Each split owns a disjoint block of identity numbers, so training,
IJB and CelebA identities never overlap.

Its length: the generator writes four layouts from one set of sampled identities; the renderer itself
is :mod:`dmlfaces.data.faces`.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from dmlfaces.data import celeba as celeba_layout
from dmlfaces.data import ijb as ijb_layout
from dmlfaces.data.align import align_face_with_landmarks
from dmlfaces.data.faces import (
    ImageFactors,
    PersonFactors,
    encode_jpeg,
    factor_record,
    quality_score,
    render_face,
    sample_image,
    sample_person,
)
from dmlfaces.data.ground_truth import GROUND_TRUTH_FILE
from dmlfaces.errors import OutputPathError
from dmlfaces.io import atomic_directory

GENERATOR_VERSION = 5
MANIFEST = "synthfaces.json"
# Streams of the seed sequence; never renumber them, or every data set changes.
PERSON, IMAGE, LAYOUT, PAIRS, FAMILY = 0, 1, 2, 3, 4
# Image keys of training clips start here, far above any still image index of an identity.
CLIP_KEY = 100_000
# Consecutive person numbers form lookalike families of this size (coarse appearance shared; see
# faces.sample_person); the split offsets are multiples of it, so no family spans two splits.
FAMILY_SIZE = 4
# Difficulty of the training images: uniform on [0, 1], as many poor images as good ones. An embedding learns
# to give hard images low norms only if it trains on them (AdaFace trains with low-quality augmentation);
# the milder Beta(1.5, 3) of the first version left the norm a weaker quality signal.
TRAIN_DIFFICULTY = (1.0, 1.0)
# IJB loose crops are 112 + 2 * 24 = 160 pixels: the detector's box with context around the face.
LOOSE_MARGIN = 24
# First identity number of each split: blocks far apart keep the splits disjoint as presets grow.
SPLIT_OFFSETS = {"train": 0, "ijbs": 1_000_000, "celeba": 2_000_000}


@dataclass(frozen=True)
class Preset:
    """Sizes of one SynthFaces data set. Each IJB subject has a pool of ``ijb_media`` (min, max) media and
    ``ijb_templates`` (min, max) templates drawing on it (both uniform)."""

    train_identities: int
    train_images_per_identity: int
    ijb_identities: int
    ijb_media: tuple[int, int]
    ijb_templates: tuple[int, int]
    ijb_max_impostor_pairs: int
    celeba_identities: int
    celeba_images_per_identity: int
    train_clips_per_identity: int


PRESETS: dict[str, Preset] = {
    "tiny": Preset(
        train_identities=12,
        train_images_per_identity=6,
        ijb_identities=8,
        ijb_media=(3, 4),
        ijb_templates=(3, 4),
        ijb_max_impostor_pairs=2_000,
        celeba_identities=10,
        celeba_images_per_identity=6,
        train_clips_per_identity=1,
    ),
    # IJB-B's power (10,270 genuine and 8M impostor pairs over 1,845 subjects): about 16,000 genuine pairs over
    # 640 subjects, and 5M impostor pairs, so that FAR 1e-5 has 50 impostors above its threshold.
    "default": Preset(
        train_identities=300,
        train_images_per_identity=20,
        ijb_identities=640,
        ijb_media=(4, 8),
        ijb_templates=(8, 12),
        ijb_max_impostor_pairs=5_000_000,
        celeba_identities=250,
        celeba_images_per_identity=16,
        train_clips_per_identity=2,
    ),
}


@dataclass(frozen=True)
class RenderJob:
    """One image to render: where it goes and what it shows."""

    path: str  # relative to the output directory
    person: PersonFactors
    image: ImageFactors
    margin: int = 0  # scene pixels around the 112-pixel frame (loose crops)
    align: bool = False  # warp onto the ArcFace template from the landmarks (training crops)

    def __post_init__(self) -> None:
        if self.align and self.margin <= 0:
            raise ValueError(
                f"{self.path}: aligning needs scene around the face (margin > 0), or the warp pulls in black borders"
            )


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng([seed, *key])


def person_factors(seed: int, person_id: int) -> PersonFactors:
    """The identity-level factors of global person number ``person_id``."""
    return sample_person(_rng(seed, PERSON, person_id), person_id, look=_rng(seed, FAMILY, person_id // FAMILY_SIZE))


def _clip_frames(
    seed: int, person: PersonFactors, key: tuple[int, ...], n_frames: int, difficulty: float, loose: bool = True
) -> list[ImageFactors]:
    """A video clip: a base image drifting slowly in pose, with fresh sensor noise per frame."""
    base = sample_image(_rng(seed, IMAGE, person.person_id, *key), person, difficulty=difficulty, loose=loose)
    drift = _rng(seed, IMAGE, person.person_id, *key, 1_000_000)
    step_yaw, step_pitch = drift.normal(0.0, 0.015, 2)
    frames = []
    for f in range(n_frames):
        jitter = _rng(seed, IMAGE, person.person_id, *key, f)
        frames.append(
            dataclasses.replace(
                base,
                yaw=float(np.clip(base.yaw + f * step_yaw + jitter.normal(0, 0.01), -1, 1)),
                pitch=float(np.clip(base.pitch + f * step_pitch + jitter.normal(0, 0.01), -0.5, 0.5)),
                shift_x=base.shift_x + float(jitter.normal(0, 0.5)),
                shift_y=base.shift_y + float(jitter.normal(0, 0.5)),
                noise_seed=int(jitter.integers(2**31)),
            )
        )
    return frames


def _centred_images(
    seed: int, split: str, identities: int, per_identity: int, difficulty_beta: tuple[float, float]
) -> Iterator[tuple[int, int, PersonFactors, ImageFactors]]:
    """(identity index, image index, person, image) of a split of photos framed close around the face (small
    shifts, scale and roll: ``sample_image(loose=False)``), for the training and CelebA layouts."""
    for k in range(identities):
        g = SPLIT_OFFSETS[split] + k
        person = person_factors(seed, g)
        layout = _rng(seed, LAYOUT, g)
        for j in range(per_identity):
            difficulty = float(layout.beta(*difficulty_beta))
            yield k, j, person, sample_image(_rng(seed, IMAGE, g, j), person, difficulty=difficulty, loose=False)


@dataclass
class _IJBCrop:
    """One rendered loose crop: a still, or one frame of a clip."""

    job: RenderJob
    media_id: int
    subject_id: int
    media_kind: str
    frame: int


@dataclass
class _IJBProtocolRows:
    """The IJB protocol of SynthFaces: rendered crops and the (template, crop) rows listing them."""

    crops: list[_IJBCrop]
    row_crops: np.ndarray  # (R,) index into crops of each row
    row_templates: np.ndarray  # (R,) template id of each row
    template_media: dict[int, frozenset[int]]  # template id -> its media ids
    template_subjects: dict[int, int]  # template id -> subject id


def _clip_length(rng: np.random.Generator) -> int:
    """Frames of a video clip: 2 to 40, geometric with mean ~8 (IJB's clips are mostly short)."""
    return max(2, int(min(40, 1 + rng.geometric(1 / 7))))


def _train_clips(seed: int, preset: Preset) -> Iterator[tuple[int, int, list[ImageFactors], PersonFactors]]:
    """(identity number, clip index, closely framed frames, person) of the training identities' video clips."""
    for k in range(preset.train_identities):
        g = SPLIT_OFFSETS["train"] + k
        person = person_factors(seed, g)
        # Stream key (g, CLIP_KEY + c) is disjoint from the still images' (g, j) keys.
        layout = _rng(seed, LAYOUT, g, CLIP_KEY)
        for c in range(preset.train_clips_per_identity):
            frames = _clip_frames(seed, person, (CLIP_KEY + c,), _clip_length(layout), float(layout.beta(3, 2)), loose=False)
            yield g, c, frames, person


def _ijb_protocol(seed: int, preset: Preset) -> _IJBProtocolRows:
    """Per subject a pool of media (stills, and clips of 2 to 40 frames) and templates drawing 1 or more media
    of it (geometric, mean about 2, at most half the pool, so a template has partners sharing no media)."""
    crops: list[_IJBCrop] = []
    row_crops: list[int] = []
    row_templates: list[int] = []
    template_media: dict[int, frozenset[int]] = {}
    template_subjects: dict[int, int] = {}
    template_id, media_id = 0, 10_000
    for k in range(preset.ijb_identities):
        g = SPLIT_OFFSETS["ijbs"] + k
        person = person_factors(seed, g)
        layout = _rng(seed, LAYOUT, g)
        media: list[tuple[int, str, list[ImageFactors]]] = []  # (media id, kind, its images)
        for m in range(int(layout.integers(preset.ijb_media[0], preset.ijb_media[1] + 1))):
            media_id += int(layout.integers(1, 3))
            if layout.random() < 0.3:
                media.append((media_id, "clip", _clip_frames(seed, person, (m,), _clip_length(layout), float(layout.beta(3, 2)))))
            else:
                image = sample_image(_rng(seed, IMAGE, g, m), person, difficulty=float(layout.beta(1.5, 3)), loose=True)
                media.append((media_id, "still", [image]))
        templates: list[tuple[int, np.ndarray]] = []  # (template id, indices of its media)
        for _ in range(int(layout.integers(preset.ijb_templates[0], preset.ijb_templates[1] + 1))):
            # Real IJB template ids are not contiguous; neither are ours, so readers cannot assume it.
            template_id += int(layout.integers(1, 4))
            size = min(int(layout.geometric(1 / 2)), len(media) // 2)
            templates.append((template_id, np.sort(layout.choice(len(media), size, replace=False))))
        # Only media some template draws are rendered, each once, in media order.
        media_crops: dict[int, list[int]] = {}
        for index in sorted({int(i) for _, drawn in templates for i in drawn}):
            mid, kind, images = media[index]
            media_crops[index] = list(range(len(crops), len(crops) + len(images)))
            for f, image in enumerate(images):
                job = RenderJob(f"IJBS/loose_crop/{len(crops) + 1}.jpg", person, image, LOOSE_MARGIN)
                crops.append(_IJBCrop(job, mid, k + 1, kind, f))
        for tid, drawn in templates:
            for index in drawn:
                row_crops.extend(media_crops[int(index)])
                row_templates.extend([tid] * len(media_crops[int(index)]))
            template_media[tid] = frozenset(media[int(index)][0] for index in drawn)
            template_subjects[tid] = k + 1
    return _IJBProtocolRows(
        crops, np.array(row_crops, dtype=np.int64), np.array(row_templates, dtype=np.int64), template_media, template_subjects
    )


def _row_starts(n: int) -> np.ndarray:
    """(n,) position of pair (a, a + 1) in the row-major upper triangle (k=1) of an n x n matrix."""
    a = np.arange(n, dtype=np.int64)
    return a * (2 * n - a - 1) // 2


def _impostor_positions(ends: np.ndarray) -> np.ndarray:
    """Sorted positions, in the row-major upper triangle (k=1) of the T x T template matrix, of the pairs of
    templates of different subjects, when each subject's templates are consecutive and template ``a``'s subject
    ends before index ``ends[a]`` (T,). Row ``a``'s pairs with other subjects are its last ``T - ends[a]``;
    listing them directly costs a fraction of ``np.triu_indices`` over all T (T - 1) / 2 pairs."""
    n = len(ends)
    counts = n - ends
    first = _row_starts(n) + (ends - np.arange(n) - 1)  # position of (a, ends[a])
    offsets = np.arange(counts.sum(), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    return np.repeat(first, counts) + offsets


def _triangle_pairs(positions: np.ndarray, n: int) -> np.ndarray:
    """(P, 2) indices (i < j) of the given positions in the row-major upper triangle (k=1) of an n x n matrix."""
    starts = _row_starts(n)
    i = np.searchsorted(starts, positions, side="right") - 1
    return np.stack([i, positions - starts[i] + i + 1], axis=1)


def _ijb_pairs(seed: int, preset: Preset, protocol: _IJBProtocolRows) -> tuple[np.ndarray, np.ndarray]:
    """Every genuine template pair sharing no media and up to ``ijb_max_impostor_pairs`` impostor pairs, sorted."""
    templates = np.array(sorted(protocol.template_subjects), dtype=np.int64)
    subjects = np.array([protocol.template_subjects[t] for t in templates])
    # Genuine pairs: within each subject (its templates are consecutive in id order).
    genuine: list[tuple[int, int]] = []
    starts = np.flatnonzero(np.r_[True, subjects[1:] != subjects[:-1]])
    for start, stop in zip(starts, np.r_[starts[1:], len(templates)]):
        for a in range(start, stop):
            for b in range(a + 1, stop):
                if not protocol.template_media[templates[a]] & protocol.template_media[templates[b]]:
                    genuine.append((a, b))
    genuine_index = np.array(genuine, dtype=np.int64).reshape(-1, 2)
    # Impostor pairs: a uniform sample of the pairs (i < j) of templates of different subjects, drawn as
    # positions in the upper triangle of the template x template matrix.
    ends = np.repeat(np.r_[starts[1:], len(templates)], np.diff(np.r_[starts, len(templates)]))
    impostor = _impostor_positions(ends)
    if len(impostor) > preset.ijb_max_impostor_pairs:
        impostor = np.sort(_rng(seed, PAIRS).choice(impostor, preset.ijb_max_impostor_pairs, replace=False))
    index = np.concatenate([genuine_index, _triangle_pairs(impostor, len(templates))])
    labels = np.r_[np.ones(len(genuine_index), np.int8), np.zeros(len(impostor), np.int8)]
    order = np.lexsort((index[:, 1], index[:, 0]))
    return templates[index[order]], labels[order]


def _detector_score(seed: int, crop_index: int, quality: float) -> float:
    """A detector's confidence: high for good crops, with a little noise of its own."""
    noise = _rng(seed, IMAGE, SPLIT_OFFSETS["ijbs"] - 1, crop_index).normal(0.0, 0.01)
    return float(np.clip(0.55 + 0.45 * quality + noise, 0.0, 0.999))


def celeba_labels(person: PersonFactors, image: ImageFactors) -> np.ndarray:
    """(40,) int8 CelebA attribute vector in {-1, 1}; attributes SynthFaces does not render are -1."""
    hair_shown = person.hair_style != "bald" and person.grey_fraction < 0.5
    rendered = {
        "5_o_Clock_Shadow": image.beard and person.beard_style == "stubble",
        "Bald": person.hair_style == "bald",
        "Bangs": person.hair_style == "bangs",
        "Black_Hair": hair_shown and person.hair_colour == "black",
        "Blond_Hair": hair_shown and person.hair_colour == "blond",
        "Blurry": image.blur > 1.0 or image.low_resolution < 0.5,
        "Brown_Hair": hair_shown and person.hair_colour == "brown",
        "Eyeglasses": image.glasses,
        "Goatee": image.beard and person.beard_style == "goatee",
        "Gray_Hair": person.hair_style != "bald" and person.grey_fraction >= 0.5,
        "Male": person.gender == "male",
        "Mouth_Slightly_Open": image.expression == "surprised",
        "No_Beard": not image.beard,
        "Pale_Skin": person.is_pale,
        "Smiling": image.expression == "smiling",
        "Wavy_Hair": person.hair_style == "curly",
        "Young": person.age_group == "young",
    }
    return np.array([1 if rendered.get(name, False) else -1 for name in celeba_layout.CELEBA_ATTRIBUTES], dtype=np.int8)


RENDERED_CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow",
    "Bald",
    "Bangs",
    "Black_Hair",
    "Blond_Hair",
    "Blurry",
    "Brown_Hair",
    "Eyeglasses",
    "Goatee",
    "Gray_Hair",
    "Male",
    "Mouth_Slightly_Open",
    "No_Beard",
    "Pale_Skin",
    "Smiling",
    "Wavy_Hair",
    "Young",
)


def _render_to(args: tuple[Path, RenderJob]) -> np.ndarray:
    """Worker: render one job, write its JPEG, return its (5, 2) landmarks (in the written image)."""
    root, job = args
    pixels, landmarks = render_face(job.person, job.image, job.margin)
    if job.align:
        # A rendered face is centred by construction, but an IJB crop is centred by its landmarks; a training
        # set aligned otherwise than the evaluation crops would teach the embedding a different geometry.
        pixels, landmarks = align_face_with_landmarks(pixels, landmarks)
    (root / job.path).write_bytes(encode_jpeg(pixels, job.image.jpeg_quality))
    return landmarks


@contextlib.contextmanager
def _rendering(root: Path, jobs: list[RenderJob], workers: int) -> Iterator[Callable[[], np.ndarray]]:
    """Start rendering every job in ``workers`` processes and yield ``wait``, which returns the (N, 5, 2)
    landmarks once all are written (output does not depend on ``workers``). Until the caller waits, this
    process is free for the work that needs no landmarks, which would otherwise run before or after the
    rendering with the workers idle."""
    for parent in sorted({(root / job.path).parent for job in jobs}):
        parent.mkdir(parents=True, exist_ok=True)
    tasks = [(root, job) for job in jobs]
    progress = dict(total=len(jobs), desc="synth", unit="img", mininterval=2.0)
    if workers <= 1:
        yield lambda: np.stack([_render_to(task) for task in tqdm(tasks, **progress)])
        return
    # Workers ignore Ctrl-C: the parent alone is interrupted, and leaving the pool stops them (no trace per worker).
    with multiprocessing.get_context("fork").Pool(
        workers, initializer=signal.signal, initargs=(signal.SIGINT, signal.SIG_IGN)
    ) as pool:
        results = pool.imap(_render_to, tasks, chunksize=32)
        yield lambda: np.stack(list(tqdm(results, **progress)))


def _ground_truth_csv(rows: list[dict[str, object]]) -> str:
    """CSV text of ``rows``, which all have the first row's keys in its order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(rows[0])
    writer.writerows(row.values() for row in rows)
    return buffer.getvalue()


def outdated(out: str | os.PathLike[str], preset: str, seed: int) -> str | None:
    """Why ``out`` does not hold what ``synthesize(out, preset, seed)`` would write now; None when it does.

    Judged from the manifest: generator version, preset and seed (not the files themselves; ``data.dvc``'s
    hash checks those).
    """
    manifest = _read_manifest(Path(out))
    if isinstance(manifest, str):
        return manifest
    found = (manifest.get("generator_version"), manifest.get("preset"), manifest.get("seed"))
    if found != (GENERATOR_VERSION, preset, seed):
        return (
            f"{out} holds generator v{found[0]}, preset {found[1]}, seed {found[2]}; "
            f"wanted v{GENERATOR_VERSION}, preset {preset}, seed {seed}"
        )
    files = manifest.get("files")
    if not isinstance(files, dict):
        return f"{Path(out) / MANIFEST} has no file inventory (written by an earlier dmlfaces), so completeness cannot be checked"
    for name, size in files.items():
        path = Path(out) / name
        if not path.is_file():
            return f"{path} is missing: {out} is incomplete"
        if path.stat().st_size != size:
            return f"{path} has {path.stat().st_size} bytes, the manifest records {size}: {out} is damaged"
    return None


def _read_manifest(out: Path) -> dict | str:
    """``out``'s manifest, or why there is none to read."""
    path = out / MANIFEST
    if not path.is_file():
        return f"{path} is missing"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        return f"{path} is not a SynthFaces manifest ({error})"
    return manifest if isinstance(manifest, dict) else f"{path} is not a SynthFaces manifest (not a JSON object)"


def _inventory(root: Path) -> dict[str, int]:
    """Every file under ``root`` (relative POSIX path -> size in bytes), sorted, the manifest excluded."""
    # os.scandir's entries carry their type: Path.rglob + is_file + stat cost three system calls per file.
    sizes: dict[str, int] = {}
    pending = [(root, "")]
    while pending:
        folder, prefix = pending.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    pending.append((Path(entry.path), f"{prefix}{entry.name}/"))
                elif entry.is_file() and entry.name != MANIFEST:
                    sizes[prefix + entry.name] = entry.stat().st_size
    return dict(sorted(sizes.items()))


def _check_replaceable(out: Path, new: Path | None = None) -> None:
    """Raise ``OutputPathError`` unless everything under ``out`` was written by ``synthesize``.

    An empty directory may be filled. Otherwise ``out`` must hold a manifest whose inventory lists every
    file there, so replacing it deletes nothing a user put in it. A manifest of an earlier dmlfaces has no
    inventory: then its files must be ones the new output ``new`` holds too (checked once ``new`` is built).
    """
    if out.is_symlink() or not out.is_dir():
        raise OutputPathError(
            f"{out} exists and is not a directory (or is a symbolic link: pass its target); give a new directory for --out"
        )
    if not any(out.iterdir()):
        return
    manifest = _read_manifest(out)
    if isinstance(manifest, str):
        raise OutputPathError(
            f"{out} is not empty and is not a SynthFaces output ({manifest}); "
            "give an empty or new directory for --out, so nothing of yours is replaced"
        )
    if isinstance(manifest.get("files"), dict):
        listed = set(manifest["files"])
    elif new is not None:
        listed = set(_inventory(new))
    else:
        return
    listed.add(MANIFEST)
    # Folders are SynthFaces' only where they hold a listed file; a symbolic link never is (is_dir follows it).
    folders = {parent.as_posix() for name in listed for parent in Path(name).parents}
    foreign = sorted(
        name
        for name in (p.relative_to(out).as_posix() for p in out.rglob("*"))
        if name not in listed and (name not in folders or (out / name).is_symlink())
    )
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        why = (
            "its manifest does not list them"
            if "files" in manifest
            else "an earlier dmlfaces wrote it without a file inventory, and the new output has no such files"
        )
        raise OutputPathError(
            f"{out} holds {len(foreign)} files SynthFaces did not write ({shown}): {why}; "
            f"move them out of {out}, or delete {out} yourself, then run synth again"
        )


def _write_ijb(
    root: Path, seed: int, ijb: _IJBProtocolRows, pairs: np.ndarray, labels: np.ndarray, landmarks: np.ndarray
) -> None:
    """Write the IJB meta files under ``root`` from the (P, 2) template pairs, their (P,) labels and the rendered
    crops' (C, 5, 2) landmarks. The first template of each subject is its gallery template; its other templates
    are probes, split by whether they share media with the gallery template (IJB's probes share none)."""
    gallery: dict[int, int] = {}
    for template, subject in ijb.template_subjects.items():  # dicts keep insertion (id) order
        gallery.setdefault(subject, template)
    one_to_n: dict[str, list[tuple[int, int, str]]] = {
        "1N_gallery_G1": [],
        "1N_gallery_G2": [],
        "1N_probe_mixed": [],
        "1N_probe_shared_media": [],
    }
    crop_names = np.array([Path(c.job.path).name for c in ijb.crops])
    for template, crop in zip(ijb.row_templates.tolist(), ijb.row_crops.tolist()):
        subject = ijb.template_subjects[template]
        if gallery[subject] == template:
            key = "1N_gallery_G1" if subject % 2 else "1N_gallery_G2"
        elif ijb.template_media[template] & ijb.template_media[gallery[subject]]:
            key = "1N_probe_shared_media"
        else:
            key = "1N_probe_mixed"
        one_to_n[key].append((template, subject, str(crop_names[crop])))
    detector_scores = np.array(
        [_detector_score(seed, i, quality_score(c.job.image)) for i, c in enumerate(ijb.crops)], dtype=np.float32
    )
    ijb_layout.write_ijb(
        root,
        "ijbs",
        crop_names=crop_names[ijb.row_crops],
        template_ids=ijb.row_templates,
        media_ids=np.array([c.media_id for c in ijb.crops], dtype=np.int64)[ijb.row_crops],
        landmarks=landmarks.astype(np.float32)[ijb.row_crops],
        detector_scores=detector_scores[ijb.row_crops],
        pairs=pairs,
        pair_labels=labels,
        one_to_n=one_to_n,
    )


def synthesize(out: str | os.PathLike[str], preset: str = "default", seed: int = 0, workers: int | None = None) -> dict[str, int]:
    """Write a SynthFaces data set to ``out`` (replacing an earlier SynthFaces output there).

    Everything is written into a temporary sibling and renamed at the end, so an interrupted run
    leaves either the old data set or the new one, never a mix.

    Returns:
        The counts recorded in ``synthfaces.json``.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    out = Path(out)
    if out.name in ("", ".", "..") or out.is_symlink():
        raise OutputPathError(
            f"--out {out}: give the data set's own directory by name (not '.', '..' or a "
            "symbolic link), e.g. data; it is built beside that name and renamed into place"
        )
    if out.exists():
        _check_replaceable(out)  # before any work: refuse at once rather than after rendering
    sizes = PRESETS[preset]
    workers = workers or os.cpu_count() or 1

    jobs: list[RenderJob] = []
    rows: list[dict[str, object]] = []

    def add(job: RenderJob, split: str, identity: str, **extra: object) -> None:
        jobs.append(job)
        rows.append(
            {
                "split": split,
                "path": job.path,
                "person_id": job.person.person_id,
                "identity": identity,
                "template_id": extra.get("template_id", -1),
                "media_id": extra.get("media_id", -1),
                "media_kind": extra.get("media_kind", "still"),
                "frame": extra.get("frame", 0),
            }
        )

    for _, j, person, image in _centred_images(
        seed, "train", sizes.train_identities, sizes.train_images_per_identity, TRAIN_DIFFICULTY
    ):
        g = person.person_id
        add(RenderJob(f"train/{g:07d}/{j:04d}.jpg", person, image, LOOSE_MARGIN, align=True), "train", f"{g:07d}")

    ijb_start = len(jobs)
    ijb = _ijb_protocol(seed, sizes)
    for crop in ijb.crops:
        add(crop.job, "ijbs", str(crop.subject_id), media_id=crop.media_id, media_kind=crop.media_kind, frame=crop.frame)

    celeba_start = len(jobs)
    celeba_identities, celeba_partitions = [], []
    # Celebrity photos: mostly good quality, so a gentler difficulty than the training images.
    for k, _, person, image in _centred_images(
        seed, "celeba", sizes.celeba_identities, sizes.celeba_images_per_identity, (1.2, 4)
    ):
        name = f"{len(jobs) - celeba_start + 1:06d}.jpg"
        add(RenderJob(f"celeba/img_align_celeba/{name}", person, image), "celeba", str(k + 1))
        celeba_identities.append(k + 1)
        # CelebA's partitions are identity-disjoint: 8 of 10 identities train, 1 val, 1 test.
        celeba_partitions.append(0 if k % 10 < 8 else (1 if k % 10 == 8 else 2))

    clips_start = len(jobs)
    for g, c, frames, person in _train_clips(seed, sizes):
        for f, image in enumerate(frames):
            add(
                RenderJob(f"train_clips/{g:07d}/{c:02d}/{f:03d}.jpg", person, image, LOOSE_MARGIN, align=True),
                "train_clips",
                f"{g:07d}",
                media_kind="clip",
                frame=f,
            )

    celeba_jobs = jobs[celeba_start:clips_start]
    with atomic_directory(out, _check_replaceable) as tmp:
        with _rendering(tmp, jobs, workers) as wait_for_landmarks:
            # While the workers render: everything that needs no landmarks.
            pairs, ijb_labels = _ijb_pairs(seed, sizes, ijb)
            for row, job in zip(rows, jobs):
                row.update(factor_record(job.person, job.image))
            celeba_attributes = np.stack([celeba_labels(j.person, j.image) for j in celeba_jobs])
            landmarks = wait_for_landmarks()

        _write_ijb(tmp / "IJBS", seed, ijb, pairs, ijb_labels, landmarks[ijb_start:celeba_start])
        celeba_layout.write_celeba(
            tmp / "celeba",
            image_names=[Path(j.path).name for j in celeba_jobs],
            attributes=celeba_attributes,
            identities=np.array(celeba_identities, dtype=np.int64),
            partitions=np.array(celeba_partitions, dtype=np.int8),
            landmarks=landmarks[celeba_start:clips_start],
        )

        for row, points in zip(rows, landmarks):
            row.update({f"landmark_{i}_{axis}": round(float(points[i, a]), 3) for i in range(5) for a, axis in enumerate("xy")})
        (tmp / GROUND_TRUTH_FILE).write_text(_ground_truth_csv(rows), encoding="utf-8")
        counts = {
            "train_identities": sizes.train_identities,
            "train_images": sizes.train_identities * sizes.train_images_per_identity,
            "ijb_subjects": sizes.ijb_identities,
            "ijb_templates": len(ijb.template_subjects),
            "ijb_media": len({c.media_id for c in ijb.crops}),
            "ijb_crops": len(ijb.crops),
            "ijb_rows": len(ijb.row_crops),
            "ijb_genuine_pairs": int(ijb_labels.sum()),
            "ijb_impostor_pairs": int(len(ijb_labels) - ijb_labels.sum()),
            "celeba_identities": sizes.celeba_identities,
            "celeba_images": len(celeba_jobs),
            "train_clips": sizes.train_identities * sizes.train_clips_per_identity,
            "train_clip_frames": len(jobs) - clips_start,
        }
        manifest = {
            "generator_version": GENERATOR_VERSION,
            "preset": preset,
            "seed": seed,
            "counts": counts,
            "files": _inventory(tmp),
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return counts
