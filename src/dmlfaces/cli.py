"""The ``dmlfaces`` command line: one sub-command per pipeline stage.

Nothing here loads numpy or torch before ``main`` has pinned the CPU numerics (``dmlfaces.numerics``): the
modules each sub-command needs are imported inside its handler.

Its length is the parser's: one sub-command per pipeline stage, each a short handler that imports what it needs.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from dmlfaces import timing
from dmlfaces.errors import UserError
from dmlfaces.io import check_file_output
from dmlfaces.numerics import pin_numerics


def _synth(args: argparse.Namespace) -> None:
    from dmlfaces.data.synth import outdated, synthesize

    if args.reuse:
        reason = outdated(args.out, args.preset, args.seed)
        if reason is None:
            print(f"{args.out}: already SynthFaces of this generator, preset {args.preset} and seed {args.seed}; kept")
            return
        print(f"{reason}: generating")
    counts = synthesize(args.out, preset=args.preset, seed=args.seed, workers=args.workers)
    print(json.dumps({"out": str(args.out), **counts}, sort_keys=True))


def _data_report(args: argparse.Namespace) -> None:
    from dmlfaces.data.summary import dataset_summary
    from dmlfaces.eval.pixel_baseline import pixel_baseline_verification
    from dmlfaces.eval.realism import dlib_realism
    from dmlfaces.io import write_json
    from dmlfaces.metrics import data_metrics
    from dmlfaces.stage_params import load_sections

    data, report = load_sections(args.params, "data", "data_report")
    root, features = Path(data.dir), args.results / "features"
    document = data_metrics(
        dataset_summary(root),
        pixel_baseline_verification(
            root / "IJBS", root / "train", pca_dim=report.pca_dim, pixel_size=report.pixel_size, seed=data.seed, progress=False
        ),
        dlib_realism(features / "celeba_dlib.npz", features / "celeba_dlib.faces.csv", root / "celeba"),
        json.loads((root / "synthfaces.json").read_text()),
    )
    if args.out:
        write_json(args.out, document)
    print(json.dumps(document, indent=2, sort_keys=True))


def _train_embedding(args: argparse.Namespace) -> None:
    from dmlfaces.train.embedding import load_config, train_embedding

    train_embedding(args.data, args.out, load_config(args.params), resume=args.resume)


def _train_aggregator(args: argparse.Namespace) -> None:
    from dmlfaces.train.aggregator import train_aggregator
    from dmlfaces.train.aggregator_config import load_config

    train_aggregator(
        args.views, args.out, load_config(args.params, args.variant), resume=args.resume, official_views_path=args.official_views
    )


def _extract_views(args: argparse.Namespace) -> None:
    from dmlfaces.train.aggregator import precompute_views

    precompute_views(
        args.backbone,
        args.data,
        args.views,
        args.seed,
        args.out,
        device=args.device,
        clips_root=args.clips,
        augmentation=args.augmentation,
    )


def _extract(args: argparse.Namespace) -> None:
    from dmlfaces.features import extract_with_single_pass, shard_range, write_features_sharded
    from dmlfaces.train.distributed import gather_over_ranks, init_distributed

    if args.no_landmarks and not (args.dlib and args.celeba):
        raise UserError(
            "--no-landmarks applies to --dlib --celeba only (the landmarks come from the CelebA layout; a "
            "--backbone describes the aligned images as they are); drop it"
        )
    skipped: list[str] = []  # crops left out on purpose, recorded in the features file
    landmarks = None  # (N, 5, 2): where dlib detects no face, it aligns the face from these
    if args.ijb:
        from dmlfaces.data.ijb import read_ijb

        protocol = read_ijb(args.ijb)
        # Every crop's landmarks are checked against its image header now, not one hour in at crop 9,000.
        bad = protocol.landmark_problems()
        if not args.skip_bad_landmarks or len(bad) == protocol.num_crops:  # skipping all would leave nothing
            protocol.check_landmarks(bad)
        for error in bad.values():
            print(f"skipped: {error}", file=sys.stderr)
        if bad:
            print(f"skipped {len(bad)} of {protocol.num_crops} crop rows with bad landmarks", file=sys.stderr)
        # A crop several templates list is extracted once: its features serve every row naming it.
        kept = [int(i) for i in protocol.unique_crops if i not in bad]
        names = [str(protocol.crop_names[i]) for i in kept]
        skipped = sorted({str(protocol.crop_names[i]) for i in bad})
        load = lambda i: protocol.aligned_crop(kept[i])  # noqa: E731  loose crops: align from the 5 points
    elif args.celeba:
        from dmlfaces.data.align import landmark_problems
        from dmlfaces.data.celeba import LANDMARK_COLUMNS, LANDMARKS_FILE, read_celeba
        from dmlfaces.data.errors import DataFormatError

        celeba = read_celeba(args.celeba)
        names = list(celeba.attributes.index)
        if args.dlib and celeba.landmarks is not None and not args.no_landmarks:
            landmarks = celeba.landmarks.loc[names, list(LANDMARK_COLUMNS)].to_numpy().reshape(-1, 5, 2)
            # Checked here, where the image is known by name (the embedder sees only this rank's share).
            if problems := landmark_problems(landmarks):
                index, problem = problems[0]
                raise DataFormatError(
                    args.celeba / LANDMARKS_FILE,
                    f"image {names[index]}: {problem}",
                    expected="5 distinct points of a face that are not all on one line",
                    fix="correct that image's line, or extract with --no-landmarks",
                )
        load = lambda i: celeba.load_image(names[i])  # noqa: E731
    else:
        from dmlfaces.data.folders import read_image_folder
        from dmlfaces.data.images import load_rgb

        folder = read_image_folder(args.folder)
        names = [str(p.relative_to(folder.root)) for p in folder.paths]
        load = lambda i: load_rgb(folder.paths[i])  # noqa: E731
    context = init_distributed(args.device)  # under torchrun each rank extracts its share of the crops
    share = shard_range(len(names), 1 if args.dlib else args.batch_size, context)
    load_share = lambda j: load(share[j])  # noqa: E731
    if args.dlib:
        from dmlfaces.models.dlib_embedder import DlibEmbedder

        # Every rank calibrates the landmark alignment on all ranks' detections (pool), as one process would.
        features, norms, found_by = DlibEmbedder().extract(
            load_share,
            len(share),
            landmarks=None if landmarks is None else landmarks[share.start : share.stop],
            progress=context.is_main,
            pool=lambda samples: gather_over_ranks(samples, context),
        )
        found_by = gather_over_ranks(found_by, context)  # the crops' order: shares are contiguous, in rank order
    else:
        from dmlfaces.models.checkpoints import load_backbone

        features, norms, *single = extract_with_single_pass(
            load_backbone(args.backbone),
            load_share,
            len(share),
            batch_size=args.batch_size,
            flip=not args.no_flip,
            device=str(context.device),
            progress=context.is_main,
        )
    flip_test = not args.dlib and not args.no_flip  # else the features are single passes themselves
    write_features_sharded(
        args.out, names, features, norms, context, skipped, flip_test=flip_test, single=tuple(single) if flip_test else None
    )
    if args.dlib and context.is_main:
        from dmlfaces.models.dlib_embedder import DETECTOR, LANDMARKS, WHOLE_IMAGE, faces_path, write_found_by

        write_found_by(faces_path(args.out), names, found_by)
        counts = {way: int((found_by == way).sum()) for way in (DETECTOR, LANDMARKS, WHOLE_IMAGE)}
        print(
            f"dlib: {counts[DETECTOR]} of {len(names)} faces found by its detector, {counts[LANDMARKS]} aligned from "
            f"the landmarks, {counts[WHOLE_IMAGE]} described as the whole image ({faces_path(args.out)})"
        )
    if context.is_main:
        print(
            json.dumps(
                {"out": str(args.out), "crops": len(names), "dim": int(features.shape[1]), **args.clock.throughput(len(names))}
            )
        )


def _verify(args: argparse.Namespace) -> None:
    import numpy as np

    from dmlfaces.data.ijb import read_ijb
    from dmlfaces.features import (
        FeatureSet,
        extract_with_single_pass,
        read_features,
        read_official_feature_pickle,
        write_features,
    )
    from dmlfaces.io import write_json
    from dmlfaces.metrics import verification_metrics
    from dmlfaces.verify import OFFICIAL_CHECKPOINT, compared_methods, trained_aggregators, verify_protocol

    protocol = read_ijb(args.ijb)
    if args.backbone:
        from dmlfaces.models.checkpoints import load_backbone

        protocol.check_landmarks()  # every crop before any extraction (extract --skip-bad-landmarks can skip them)

        rows = protocol.unique_crops  # a crop several templates list is extracted once
        features, norms, *single = extract_with_single_pass(
            load_backbone(args.backbone),
            lambda i: protocol.aligned_crop(rows[i]),
            len(rows),
            batch_size=args.batch_size,
            device=args.device,
        )
        write_features(args.out / "features.npz", protocol.crop_names[rows], features, norms, single=tuple(single))
        crops = FeatureSet(
            np.asarray(protocol.crop_names[rows]), features, norms, single_features=single[0], single_norms=single[1]
        )
    elif args.features.suffix in (".pickle", ".pkl"):  # the official FaceCoresetNet IJB features
        crops = read_official_feature_pickle(args.features, protocol.crop_names)
    else:
        crops = read_features(args.features)
    trained = trained_aggregators(args.aggregators) if args.aggregators else {}
    methods = compared_methods(crops.features.shape[1], trained)
    if args.coreset_checkpoint:
        from dmlfaces.models.checkpoints import CheckpointError
        from dmlfaces.models.coreset_checkpoint import load_official_coreset

        methods[OFFICIAL_CHECKPOINT], ignored = load_official_coreset(args.coreset_checkpoint)
        if methods[OFFICIAL_CHECKPOINT].dim != crops.features.shape[1]:
            raise CheckpointError(
                f"{args.coreset_checkpoint}: the aggregator takes {methods[OFFICIAL_CHECKPOINT].dim}-d "
                f"features, the crop features have {crops.features.shape[1]}; give the features of its "
                "backbone (AdaFace IR-101 on WebFace4M: the official pickles, or --backbone FaceCoresetNet.ckpt)"
            )
        print(
            f"{args.coreset_checkpoint}: {len(ignored)} keys of modules the official forward never calls are ignored "
            f"({', '.join(sorted({key.rsplit('.', 1)[0] for key in ignored}))})"
        )
    report, one_to_n = verify_protocol(methods, protocol, crops, resamples=args.resamples, seed=args.seed, device=args.device)
    write_json(args.out / "verification.json", verification_metrics(report, one_to_n, protocol=str(args.ijb)))
    for name, result in report.methods.items():
        print(f"{name}: " + ", ".join(f"TAR@{far:g} {100 * result.tar_exact[far]:.2f}%" for far in report.fars))


def _attributes(args: argparse.Namespace) -> None:
    from dmlfaces.data.celeba import read_celeba
    from dmlfaces.eval.attributes import AttributeStudyParams, run_attribute_study
    from dmlfaces.features import read_features
    from dmlfaces.io import write_json
    from dmlfaces.metrics import attribute_embedding, attributes_metrics
    from dmlfaces.params import load_section

    params = load_section(AttributeStudyParams, args.params, "attributes") if args.params else AttributeStudyParams()
    celeba = read_celeba(args.celeba)
    truth = None
    if args.ground_truth:
        from dmlfaces.eval.factors import celeba_ground_truth

        truth = celeba_ground_truth(args.ground_truth, celeba, fix="run 'dmlfaces attributes' without --ground-truth")
    found = read_features(args.features)
    report = run_attribute_study(found, celeba, params, truth)
    # The schema of chapter 05's attributes.json, with this one embedding under its name.
    write_json(
        args.out,
        attributes_metrics(
            params, {args.name or args.features.stem: attribute_embedding(args.features, found.features.shape[1], report)}
        ),
    )
    for name, result in report.items():
        if result["status"] != "ok":
            print(f"{name}: skipped ({result['reason']})")
            continue
        accuracy = result["accuracy"]["mean"] if result["protocol"] == "intra" else result["uncontrolled"]["accuracy"]
        print(f"{name} ({result['protocol']}-class, {result['column']}): clustering accuracy {accuracy:.3f}")


def _check_params(args: argparse.Namespace) -> None:
    from dmlfaces.stage_params import check_params

    check_params(args.params, args.sections)


def _notebook(args: argparse.Namespace) -> None:
    from dmlfaces.notebook import NotebookFailed, execute_notebook

    try:
        execute_notebook(args.notebook, args.out, args.parameters or ())
    except NotebookFailed as error:
        raise SystemExit(f"dmlfaces notebook: {error}") from None


def _at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer of at least ``minimum``; anything else is a usage error naming the value."""

    def integer(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value}; it must be at least {minimum}")
        return value

    return integer


def _device(text: str) -> str:
    """An argparse type: a device name ``check_device`` accepts, checked before any work."""
    from dmlfaces.params import DEVICE, DEVICE_CHOICES

    if not DEVICE.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r}; choose {DEVICE_CHOICES}")
    return text


def build_parser() -> argparse.ArgumentParser:
    from dmlfaces.data.synth import PRESETS
    from dmlfaces.params import AUTO_DEVICE, DEVICE_CHOICES, PARAMS_FILE
    from dmlfaces.stage_params import AggregatorViewsParams, DataParams, VerificationReportParams  # the defaults
    from dmlfaces.train.aggregator_config import CLIP_VIEWS, OUR_VIEWS

    parser = argparse.ArgumentParser(prog="dmlfaces", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    synth = commands.add_parser("synth", help="write the SynthFaces data set in the IJB, CelebA and image-folder layouts")
    synth.add_argument(
        "--out", type=Path, required=True, help="output directory (created; an earlier SynthFaces output is replaced)"
    )
    synth.add_argument("--preset", choices=sorted(PRESETS), default=DataParams.preset, help="data set size")
    synth.add_argument(
        "--seed", type=_at_least(0), default=DataParams.seed, help="random seed; the same preset and seed give identical files"
    )
    synth.add_argument(
        "--workers", type=_at_least(1), default=None, help="render processes (default: all cores; output does not depend on it)"
    )
    synth.add_argument(
        "--reuse", action="store_true", help="keep --out when it already holds this generator version, preset and seed"
    )
    synth.set_defaults(run=_synth)

    report = commands.add_parser(
        "data-report",
        help="chapter 01's data.json: counts read back through the readers, the pixel "
        "baseline's TAR@FAR and dlib's view of the faces (needs 'extract --dlib' of the CelebA set)",
    )
    report.add_argument("--params", type=Path, default=PARAMS_FILE, help="parameters file (sections 'data', 'data_report')")
    report.add_argument("--results", type=Path, default=Path("results"), help="the pipeline's results (features/celeba_dlib.*)")
    report.add_argument("--out", type=Path, default=None, help="write the report as JSON here")
    report.set_defaults(file_output=True, run=_data_report)

    train = commands.add_parser("train-embedding", help="train the identity embedding (runs under torchrun for many GPUs)")
    train.add_argument("--data", type=Path, required=True, help="identity-per-folder training images")
    train.add_argument("--out", type=Path, required=True, help="directory for backbone.pt, history.json and checkpoints/")
    train.add_argument("--params", type=Path, default=PARAMS_FILE, help="parameters file (section 'embedding')")
    train.add_argument("--resume", action="store_true", help="continue from out/checkpoints/last.pt")
    train.set_defaults(run=_train_embedding)

    aggregator = commands.add_parser(
        "train-aggregator", help="train a set aggregator (the coreset model) on templates of a frozen embedding"
    )
    aggregator.add_argument("--views", type=Path, required=True, help="training view features written by extract-views")
    aggregator.add_argument(
        "--official-views",
        type=Path,
        help="views written by 'extract-views --augmentation official', used by variants with clip_views official",
    )
    aggregator.add_argument("--out", type=Path, required=True, help="directory for aggregator.pt, history.json and checkpoints/")
    aggregator.add_argument("--params", type=Path, default=PARAMS_FILE)
    aggregator.add_argument("--variant", help="apply params.yaml aggregator_variants.<VARIANT> to the aggregator section")
    aggregator.add_argument("--resume", action="store_true", help="continue from out/checkpoints/last.pt")
    aggregator.set_defaults(run=_train_aggregator)

    views = commands.add_parser(
        "extract-views", help="features of the training images and augmented copies, for aggregator training"
    )
    views.add_argument("--backbone", type=Path, required=True, help="the frozen embedding (backbone.pt or a public checkpoint)")
    views.add_argument("--data", type=Path, required=True, help="identity-per-folder training images")
    views.add_argument("--clips", type=Path, help="video clips of the same identities: <identity>/<clip>/<frame>.jpg")
    views.add_argument("--out", type=Path, required=True, help="output .npz")
    views.add_argument(
        "--views",
        type=_at_least(0),
        default=AggregatorViewsParams.views,
        help="augmented copies per image (besides the image itself)",
    )
    views.add_argument(
        "--augmentation",
        default=OUR_VIEWS,
        choices=CLIP_VIEWS,
        help="ours (mild, flip-test features) or FaceCoresetNet's (RandAugment per copy, single-pass features)",
    )
    views.add_argument("--seed", type=_at_least(0), default=DataParams.seed, help="random seed of the augmentations (data.seed)")
    views.add_argument("--device", type=_device, default=AUTO_DEVICE, help=DEVICE_CHOICES)
    views.set_defaults(file_output=True, run=_extract_views)

    extract = commands.add_parser(
        "extract", help="per-crop unit features and norms of a data set (npz + csv index; runs under torchrun for many GPUs)"
    )
    model = extract.add_mutually_exclusive_group(required=True)
    model.add_argument("--backbone", type=Path, help="backbone.pt, an arcface_torch backbone.pth or an AdaFace .ckpt")
    model.add_argument("--dlib", action="store_true", help="dlib's pretrained 128-d face descriptor (extra 'dlib')")
    source = extract.add_mutually_exclusive_group(required=True)
    source.add_argument("--ijb", type=Path, help="IJB-layout root (crops are aligned from their 5 points)")
    source.add_argument("--celeba", type=Path, help="CelebA-layout root")
    source.add_argument("--folder", type=Path, help="identity-per-folder images")
    extract.add_argument(
        "--out",
        type=Path,
        required=True,
        help="output .npz (a .csv index is written beside it; with --dlib, also .faces.csv: how each face was found)",
    )
    extract.add_argument("--batch-size", type=_at_least(1), default=256)
    extract.add_argument("--no-flip", action="store_true", help="skip the flip test")
    extract.add_argument(
        "--skip-bad-landmarks",
        action="store_true",
        help="with --ijb: leave out (and list) crops whose landmarks cannot be aligned instead of refusing",
    )
    extract.add_argument(
        "--no-landmarks",
        action="store_true",
        help="with --dlib --celeba: describe images without a detection whole, not aligned from the landmarks file",
    )
    extract.add_argument("--device", type=_device, default=AUTO_DEVICE, help=DEVICE_CHOICES)
    extract.set_defaults(file_output=True, run=_extract)

    verify = commands.add_parser("verify", help="IJB-B/C 1:1 (and 1:N) evaluation of the baselines and trained aggregators")
    verify.add_argument("--ijb", type=Path, required=True, help="IJB-layout root, e.g. PATH/IJBC (loose_crop/ and meta/)")
    crops = verify.add_mutually_exclusive_group(required=True)
    crops.add_argument("--backbone", type=Path, help="extract features with this checkpoint (backbone.pt, backbone.pth, .ckpt)")
    crops.add_argument(
        "--features",
        type=Path,
        help="features already extracted from this protocol (.npz), or the "
        "official FaceCoresetNet feature pickle of it (IJBB_ir101_webface4m.pickle, IJBC_...)",
    )
    verify.add_argument("--aggregators", type=Path, help="directory of trained aggregators (<name>/aggregator.pt)")
    verify.add_argument(
        "--coreset-checkpoint",
        type=Path,
        help="the official FaceCoresetNet .ckpt: its aggregator is evaluated too, as 'facecoresetnet_official'",
    )
    verify.add_argument("--out", type=Path, required=True, help="output directory (verification.json, features.npz)")
    verify.add_argument(
        "--resamples",
        type=_at_least(0),
        default=VerificationReportParams.resamples,
        help="subject-bootstrap resamples (0: no intervals)",
    )
    verify.add_argument("--seed", type=_at_least(0), default=DataParams.seed, help="random seed of the bootstrap (data.seed)")
    verify.add_argument("--batch-size", type=_at_least(1), default=256)
    verify.add_argument("--device", type=_device, default=AUTO_DEVICE, help=DEVICE_CHOICES)
    verify.set_defaults(run=_verify)

    attributes = commands.add_parser(
        "attributes", help="Study A: cluster embeddings of a CelebA-layout set and score the clusters against attributes"
    )
    attributes.add_argument(
        "--celeba", type=Path, required=True, help="CelebA-layout root (list_attr_celeba.txt, identity_CelebA.txt)"
    )
    attributes.add_argument("--features", type=Path, required=True, help="features of its images (dmlfaces extract --celeba)")
    attributes.add_argument("--params", type=Path, help="parameters file (section 'attributes'); defaults otherwise")
    attributes.add_argument(
        "--ground-truth",
        type=Path,
        help="SynthFaces' ground_truth.csv: adds what each split follows, the controlled "
        "within-identity protocol and glasses by frame",
    )
    attributes.add_argument("--name", help="the embedding's name in the report (default: the features file's stem)")
    attributes.add_argument("--out", type=Path, required=True, help="output JSON report (chapter 05's attributes.json schema)")
    attributes.set_defaults(file_output=True, run=_attributes)

    check = commands.add_parser("check-params", help="validate params.yaml sections (types, ranges, names) before a stage runs")
    check.add_argument("sections", nargs="+", metavar="SECTION", help="params.yaml sections the stage reads")
    check.add_argument("--params", type=Path, default=PARAMS_FILE)
    check.set_defaults(run=_check_params)

    notebook = commands.add_parser(
        "notebook", help="run a study notebook with papermill; the output appears only when every cell has run"
    )
    notebook.add_argument("notebook", type=Path, help="the notebook to run (notebooks/NN_name.ipynb)")
    notebook.add_argument("out", type=Path, help="the executed notebook (book/NN_name.ipynb)")
    notebook.add_argument(
        "-p",
        "--parameter",
        dest="parameters",
        nargs=2,
        action="append",
        metavar=("NAME", "VALUE"),
        help="a papermill parameter (repeatable); values are typed as papermill types them",
    )
    notebook.set_defaults(run=_notebook)
    return parser


# Operating-system errors about a path the user gave (an input that is not there, a folder without write
# permission) are the user's to fix, like a UserError; any other exception is a bug and keeps its traceback.
PATH_ERRORS = (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError, FileExistsError)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one sub-command; a user error prints one line on stderr and returns 2, Ctrl-C one line and 130.

    Under DVC the command's wall time and exit status join its stage's record (``dmlfaces.timing``).
    """
    clock = timing.Clock()  # before the pin: its import of torch is part of every command's time
    argv = list(sys.argv[1:] if argv is None else argv)
    status = 1  # what an exception escaping from the command means for the record
    try:
        status = _run(argv, clock)
    except KeyboardInterrupt:  # Ctrl-C, also while torch loads: one line, not a traceback
        status = INTERRUPTED
        _say_interrupted(argv[0] if argv else "")
    except SystemExit as exit:  # argparse's usage errors and --help, a failed notebook
        status = exit.code if isinstance(exit.code, int) else int(exit.code is not None)
        raise
    finally:
        timing.record(clock, argv, status)
    return status


INTERRUPTED = 128 + signal.SIGINT  # the shell's status of a command stopped by Ctrl-C
RESUMABLE_COMMANDS = ("train-embedding", "train-aggregator")


def _say_interrupted(command: str) -> None:
    """One line on stderr for an interrupted command (once under torchrun: rank 0's). Every file is written to a
    temporary and renamed into place (``dmlfaces.io``), so each output is whole or untouched, but a command that
    writes several files may have replaced only some."""
    if os.environ.get("RANK", "0") != "0":
        return
    resume = "; --resume continues from its last checkpoint" if command in RESUMABLE_COMMANDS else ""
    print(
        f"dmlfaces {command}: interrupted; each output file is complete or untouched, though a command writing several"
        f" may have replaced only some{resume}",
        file=sys.stderr,
    )


# Sub-commands that compute nothing with torch in their own process (a notebook's kernel is a child process).
TORCH_FREE_COMMANDS = ("check-params", "notebook")


def _run(argv: list[str], clock: timing.Clock) -> int:
    try:
        # First: every stage and every torchrun worker computes the same bits.
        clock.numerics = pin_numerics(configure_torch=not (argv and argv[0] in TORCH_FREE_COMMANDS))
    except UserError as error:
        print(f"dmlfaces: {error}", file=sys.stderr)
        return 2
    args = build_parser().parse_args(argv)
    args.clock = clock  # a handler reports what it processed (extract: images/s) through it
    try:
        if getattr(args, "file_output", False) and args.out is not None:
            check_file_output(args.out)  # refused before any work, not after an hour of extraction
        args.run(args)
    except UserError as error:
        print(f"dmlfaces {args.command}: {error}", file=sys.stderr)
        return 2
    except PATH_ERRORS as error:
        if error.filename is None:
            raise
        print(f"dmlfaces {args.command}: {error.filename}: {error.strerror}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
