"""IJB-C-scale 1:1 verification: our engine against a re-implementation of the public insightface evaluator.

Data (seeded, synthetic, IJB-C-shaped): 469,375 crops of 512-d float32 features in 23,124 templates
(3,531 gallery templates, one per subject, and 19,593 probe templates; sizes skewed, about 20 crops
each; crops grouped into media within templates), detector scores, and 15,658,489 gallery-probe pairs
of which 19,557 genuine, as in IJB-C's 1:1 protocol. Features are subject centre + template offset +
crop noise, scaled by a random norm, so genuine pairs score higher and the ROC is non-trivial.

Ours: ``insightface_template_descriptors`` (insightface's default test mode: raw features keep their
norm, times the detector score) + ``evaluate_one_to_one`` (block pair scores, TAR at the six FARs by
the nearest and the exact rule). Reference, in the same run: the insightface ``ijb_11.py`` evaluator
re-implemented here (a Python loop over templates and their media, float64 pair scores in batches of
100,000, sklearn ``roc_curve`` and the reversed nearest-FPR pick).

Memory: the peak resident set size (VmHWM) is reset just before our evaluation and read just after,
so ``peak_rss_gib`` is the whole process's peak during our evaluation, inputs included, excluding
the data generation and the reference; ``inputs_rss_gib`` is the RSS just before it (the inputs,
the interpreter and memory the allocator kept from the generation, which ours may reuse). Also
timed: the subject bootstrap per resample at this scale.
Last line: JSON with ``ours_s``, ``reference_s``, ``speedup``, ``max_abs_tar_diff`` (nearest rule,
each pipeline's own scores), ``same_scores_tar_diff`` (our nearest rule on the reference's scores),
``max_abs_score_diff`` and ``peak_rss_gib``.

    python benchmarks/bench_verification.py [--scale 1.0] [--seed 0] [--resamples 5]
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_curve
from sklearn.preprocessing import normalize

from dmlfaces.eval.bootstrap import bootstrap_tar_at_far, pair_subjects
from dmlfaces.eval.roc import FARS, tar_at_far_nearest
from dmlfaces.eval.templates import insightface_template_descriptors
from dmlfaces.eval.verification import evaluate_one_to_one

# IJB-C 1:1 sizes (insightface IJB_release meta files).
CROPS, TEMPLATES, SUBJECTS, GENUINE, IMPOSTOR, DIM = 469_375, 23_124, 3_531, 19_557, 15_638_932, 512


def make_data(scale: float, seed: int) -> dict[str, np.ndarray]:
    """IJB-C-shaped synthetic crops, templates, media, detector scores and gallery-probe pairs."""
    rng = np.random.default_rng(seed)
    subjects = max(10, round(SUBJECTS * scale))
    templates = max(2 * subjects, round(TEMPLATES * scale))
    crops = max(templates, round(CROPS * scale))
    probes = templates - subjects
    template_ids = rng.choice(np.arange(1, 9 * templates), templates, replace=False)  # scattered ids
    template_subject = np.r_[np.arange(subjects), rng.integers(0, subjects, probes)]  # gallery first

    # Skewed template sizes (a few long videos, many small sets) summing to exactly `crops`.
    raw = rng.lognormal(0.0, 1.1, templates)
    sizes = 1 + np.floor(raw / raw.sum() * (crops - templates)).astype(np.int64)
    sizes[np.argsort(raw)[::-1][: crops - sizes.sum()]] += 1
    crop_template = np.repeat(np.arange(templates), sizes)
    media_per_template = 1 + rng.binomial(sizes - 1, 0.3)
    media_offset = np.r_[0, np.cumsum(media_per_template)[:-1]]
    media = media_offset[crop_template] + (rng.random(crops) * media_per_template[crop_template]).astype(np.int64)

    centres = rng.standard_normal((subjects, DIM), dtype=np.float32) / np.sqrt(DIM)
    offsets = rng.standard_normal((templates, DIM), dtype=np.float32) / np.sqrt(DIM)
    offsets *= rng.uniform(0.8, 3.0, (templates, 1)).astype(np.float32)
    features = np.empty((crops, DIM), dtype=np.float32)
    for start in range(0, crops, 1 << 16):
        rows = slice(start, start + (1 << 16))
        t = crop_template[rows]
        block = rng.standard_normal((len(t), DIM), dtype=np.float32) * np.float32(1.5 / np.sqrt(DIM))
        block += centres[template_subject[t]] + offsets[t]
        block *= rng.uniform(5.0, 30.0, (len(t), 1)).astype(np.float32)  # raw feature norms
        features[rows] = block

    # Genuine pairs: gallery template of the subject x one of its probes; impostors: other gallery x probe.
    genuine_count = min(probes, max(1, round(GENUINE * scale)))
    impostor_count = round(IMPOSTOR * scale * scale)
    probe_rows = subjects + np.sort(rng.choice(probes, genuine_count, replace=False))
    genuine_flat = template_subject[probe_rows] * probes + (probe_rows - subjects)
    draws = np.zeros(0, dtype=np.int64)
    while len(draws) < impostor_count:  # distinct gallery x probe cells of different subjects
        more = rng.integers(0, subjects * probes, int(1.2 * (impostor_count - len(draws))) + 100)
        draws = np.unique(np.r_[draws, more])
        draws = draws[draws // probes != template_subject[subjects + draws % probes]]
    draws = np.delete(draws, rng.choice(len(draws), len(draws) - impostor_count, replace=False))
    flat = np.r_[genuine_flat, draws]
    labels = np.r_[np.ones(len(genuine_flat), np.int8), np.zeros(len(draws), np.int8)]
    order = np.argsort(flat, kind="stable")  # gallery-major order, as in the published pair file
    flat, labels = flat[order], labels[order]
    pairs = np.stack([template_ids[flat // probes], template_ids[subjects + flat % probes]], axis=1)
    return {
        "features": features,
        "template_ids": template_ids[crop_template],
        "media_ids": media,
        "detector": rng.uniform(0.6, 1.0, crops).astype(np.float32),
        "pairs": pairs,
        "labels": labels,
        "templates": template_ids,
        "subjects": template_subject,
    }


def reference_evaluation(data: dict[str, np.ndarray]) -> tuple[dict[float, float], np.ndarray]:
    """The insightface ijb_11.py pipeline (test mode N1 D1, flip already summed), re-implemented."""
    weighted = data["features"] * data["detector"][:, None]
    template_of_crop, media_of_crop = data["template_ids"], data["media_ids"]
    unique_templates = np.unique(template_of_crop)
    template_features = np.zeros((len(unique_templates), weighted.shape[1]))
    for row, template in enumerate(unique_templates):
        (members,) = np.where(template_of_crop == template)
        member_features, member_media = weighted[members], media_of_crop[members]
        media_features = []
        for media in np.unique(member_media):
            (frames,) = np.where(member_media == media)
            media_features.append(
                member_features[frames] if len(frames) == 1 else np.mean(member_features[frames], axis=0, keepdims=True)
            )
        template_features[row] = np.sum(np.array(media_features), axis=0)
    template_features = normalize(template_features)

    lookup = np.zeros(unique_templates.max() + 1, dtype=np.int64)
    lookup[unique_templates] = np.arange(len(unique_templates))
    pairs = data["pairs"]
    scores = np.zeros(len(pairs))
    for start in range(0, len(pairs), 100_000):
        batch = pairs[start : start + 100_000]
        scores[start : start + len(batch)] = np.sum(
            template_features[lookup[batch[:, 0]]] * template_features[lookup[batch[:, 1]]], -1
        )
    fpr, tpr, _ = roc_curve(data["labels"], scores)
    fpr, tpr = np.flipud(fpr), np.flipud(tpr)
    tars = {}
    for far in FARS:
        _, nearest = min(zip(np.abs(fpr - far), range(len(fpr))))
        tars[far] = float(tpr[nearest])
    return tars, scores


def _reset_peak_rss() -> bool:
    """Reset this process's VmHWM (Linux >= 4.0); False where the kernel does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _rss_gib(field: str) -> float:
    """VmRSS or VmHWM of this process in GiB."""
    return int(re.search(rf"{field}:\s+(\d+) kB", Path("/proc/self/status").read_text()).group(1)) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="templates and crops x scale, pairs x scale^2")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resamples", type=int, default=5, help="bootstrap resamples timed (0: skip)")
    args = parser.parse_args()

    data = make_data(args.scale, args.seed)
    print(
        f"{len(data['features'])} crops, {len(np.unique(data['template_ids']))} templates, {len(data['pairs'])}"
        f" pairs ({int(data['labels'].sum())} genuine)"
    )

    exact_peak = _reset_peak_rss()
    inputs_rss = _rss_gib("VmRSS")
    start = time.perf_counter()
    templates, descriptors = insightface_template_descriptors(
        data["features"], data["template_ids"], data["media_ids"], data["detector"], normalise=False
    )
    report = evaluate_one_to_one({"ours": (templates, descriptors)}, data["pairs"], data["labels"], keep_scores=True)
    ours_s = time.perf_counter() - start
    peak_rss = _rss_gib("VmHWM") if exact_peak else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    ours = report.methods["ours"]
    print(f"ours: {ours_s:.2f} s, peak RSS {peak_rss:.2f} GiB ({inputs_rss:.2f} GiB inputs)")

    bootstrap_s = None
    if args.resamples:
        subjects = pair_subjects(data["pairs"], data["templates"], data["subjects"])
        start = time.perf_counter()
        bootstrap_tar_at_far(ours.scores, data["labels"], subjects, resamples=args.resamples)
        bootstrap_s = (time.perf_counter() - start) / args.resamples
        print(f"subject bootstrap: {bootstrap_s:.2f} s per resample")

    start = time.perf_counter()
    reference, reference_scores = reference_evaluation(data)
    reference_s = time.perf_counter() - start
    same_scores = tar_at_far_nearest(reference_scores, data["labels"], FARS)
    print(f"reference: {reference_s:.1f} s")
    for far in FARS:
        print(
            f"FAR {far:g}: ours nearest {ours.tar_nearest[far]:.6f} exact {ours.tar_exact[far]:.6f},"
            f" reference {reference[far]:.6f}"
        )
    result = {
        "scale": args.scale,
        "crops": len(data["features"]),
        "pairs": len(data["pairs"]),
        "ours_s": round(ours_s, 2),
        "reference_s": round(reference_s, 2),
        "speedup": round(reference_s / ours_s, 1),
        "max_abs_tar_diff": max(abs(ours.tar_nearest[f] - reference[f]) for f in FARS),
        "same_scores_tar_diff": max(abs(same_scores[f] - reference[f]) for f in FARS),
        "max_abs_score_diff": float(np.max(np.abs(ours.scores - reference_scores))),
        "peak_rss_gib": round(peak_rss, 3),
        "inputs_rss_gib": round(inputs_rss, 3),
        "rss_method": "VmHWM reset before ours" if exact_peak else "ru_maxrss (whole process)",
        "bootstrap_s_per_resample": None if bootstrap_s is None else round(bootstrap_s, 3),
        "tar_nearest": {f"{f:g}": ours.tar_nearest[f] for f in FARS},
        "tar_exact": {f"{f:g}": ours.tar_exact[f] for f in FARS},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
