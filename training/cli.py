"""``rcdnet-train``: split, train (split + train + evaluate + bundle), evaluate, compare."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import replace
from pathlib import Path

log = logging.getLogger("training")


def _common_data(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--data", required=required, type=Path, action="append",
                   help="class-folder root (benign/, malignant/) or CSV manifest "
                        "path,label[,mask][,patient]; repeat for several sites (each is split "
                        "by its own groups and reported on its own)")
    p.add_argument("--split", type=Path, default=None,
                   help="reuse this split CSV (path,label,group,split); made when absent")
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="decoded-image cache (default .cache/training)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-fraction", type=float, default=0.3)
    p.add_argument("--hash-bits", type=int, default=4, help="dHash Hamming threshold")
    p.add_argument("--min-corr", type=float, default=0.95, help="thumbnail correlation threshold")
    p.add_argument("--keep-conflicts", action="store_true",
                   help="keep near-duplicate groups with conflicting labels (default: drop)")
    p.add_argument("--no-progress", action="store_true")


def _bundle_on_sites(p: argparse.ArgumentParser, split_help: str, out_help: str,
                     required: bool) -> None:
    """Options of a command that measures a bundle on the training sites' validation images
    (``--data`` + ``--split``, both needed when ``required``) and on external sites."""
    p.add_argument("--bundle", type=Path, default=None, help="bundle folder (default: the app's)")
    p.add_argument("--data", type=Path, action="append", required=required,
                   help="a training site's data folder (repeat for each site of the split)")
    p.add_argument("--split", type=Path, default=None, required=required, help=split_help)
    p.add_argument("--external", type=Path, action="append",
                   help="an external site, measured only (repeatable)")
    p.add_argument("--out", type=Path, required=True, help=out_help)
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="decoded-image cache (default .cache/training)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-boot", type=int, default=2000)


def _reports(p: argparse.ArgumentParser, bundle_help: str) -> None:
    """Options of a command that reads evaluation reports' saved predictions, site by site."""
    p.add_argument("--report", type=Path, action="append", required=True,
                   help="an evaluation report folder (predictions_<mode>.npz); repeatable, "
                        "each site measured on its own")
    p.add_argument("--bundle", type=Path, default=None, help=bundle_help)
    p.add_argument("--mode", default="fusion")


def _recipe(p: argparse.ArgumentParser) -> None:
    from .train import TrainConfig

    d = TrainConfig()
    p.add_argument("--arch", default=d.arch)
    p.add_argument("--no-pretrained", action="store_true")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--label-smoothing", type=float, default=d.label_smoothing)
    p.add_argument("--mixup-alpha", type=float, default=d.mixup_alpha, help="0 disables Mixup")
    p.add_argument("--roi-fraction", type=float, default=d.roi_fraction,
                   help="share of training views that are padded lesion boxes")
    p.add_argument("--localiser-boxes", type=Path, default=None,
                   help="localiser run folder: its boxes on the training images are used for "
                        "--localiser-box-share of the lesion-box views")
    p.add_argument("--localiser-box-share", type=float, default=0.5)
    p.add_argument("--rotation", type=float, default=d.augment.rotation)
    p.add_argument("--hflip", type=float, default=d.augment.hflip)
    p.add_argument("--crop-scale", type=float, nargs=2, default=d.augment.crop_scale)
    p.add_argument("--scale", type=float, nargs=2, default=d.augment.scale)
    p.add_argument("--roi-pad", type=float, nargs=2, default=d.augment.roi_pad)
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--augment", default="paper", choices=["paper", "generic", "site"],
                   help="paper: the paper's operations with small magnitudes; generic: wider "
                        "crops and aspect, scanner-like contrast/gamma/speckle/blur, shifted "
                        "lesion boxes (overrides the geometry options above); site: the paper's "
                        "geometry plus the ways another hospital's scanner and export differ "
                        "(tighter crop, shallower depth, resolution, JPEG, depth gain, speckle)")
    p.add_argument("--box-shift", type=float, default=None,
                   help="lesion-box views: move the box by up to this share of its size "
                        "(box jitter; overrides the recipe's)")
    p.add_argument("--normalisation", default=d.preprocess.normalisation,
                   choices=["tf_lite", "imagenet"])
    p.add_argument("--input-size", type=int, default=d.preprocess.size,
                   help="model input side (the paper's 224; smaller only for quick tests)")
    p.add_argument("--threads", type=int, default=d.num_threads)
    p.add_argument("--device", default="auto")
    p.add_argument("--no-amp", action="store_true")
    p.add_argument("--val-every", type=int, default=d.val_every,
                   help="compute validation curves every N epochs (saves CPU time)")
    p.add_argument("--max-steps-per-epoch", type=int, default=None, help=argparse.SUPPRESS)


def _config_from_args(a):
    from rcdnet_desktop.core.preprocess import PreprocessConfig

    from .augment import GENERIC, SITE, AugmentConfig
    from .train import TrainConfig

    aug = AugmentConfig(crop_scale=tuple(a.crop_scale), hflip=a.hflip, rotation=a.rotation,
                        scale=tuple(a.scale), roi_pad=tuple(a.roi_pad),
                        enabled=not a.no_augment)
    aug = replace(aug, **{"paper": {}, "generic": GENERIC, "site": SITE}[a.augment])
    if a.box_shift is not None:
        aug = replace(aug, box_shift=a.box_shift)
    return TrainConfig(arch=a.arch, pretrained=not a.no_pretrained, epochs=a.epochs,
                       batch_size=a.batch_size, lr=a.lr, weight_decay=a.weight_decay,
                       label_smoothing=a.label_smoothing, mixup_alpha=a.mixup_alpha,
                       roi_fraction=a.roi_fraction, seed=a.seed, num_threads=a.threads,
                       localiser_box_share=a.localiser_box_share if a.localiser_boxes else 0.0,
                       device=a.device, amp=not a.no_amp,
                       max_steps_per_epoch=a.max_steps_per_epoch, val_every=a.val_every,
                       augment=aug,
                       preprocess=PreprocessConfig(size=a.input_size,
                                                   normalisation=a.normalisation))


def _prepare(a):
    return prepare_sources(a, a.data, a.split)


def prepare_sources(a, data, split):
    from .pipeline import default_cache_dir, prepare

    return prepare(data, split, a.cache_dir or default_cache_dir(), a.seed, a.val_fraction,
                   a.hash_bits, a.min_corr, a.keep_conflicts, progress=not a.no_progress)


def cmd_split(a) -> int:
    from .pipeline import save_split

    prep = _prepare(a)
    save_split(prep, a.out, a.data)
    print(json.dumps({k: v for k, v in prep.dedup_summary.items() if k != "conflicts"},
                     indent=1))
    return 0


def cmd_train(a) -> int:
    from .pipeline import save_split
    from .train import train

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    main_proc = int(os.environ.get("RANK", "0")) == 0  # under torchrun: one writer, rank 0
    if main_proc:  # the other ranks log to stderr only
        _log_to(out / "train.log")
    cfg = _config_from_args(a)
    prep = _prepare(a)
    if main_proc:
        save_split(prep, out / "split.csv", a.data)
        (out / "train_config.json").write_text(json.dumps(cfg.to_dict(), indent=1))
    tr, va = prep.subset("train"), prep.subset("val")
    log.info("train %d images, val %d images; skipped unreadable: %s", len(tr), len(va),
             prep.load_report.skipped)
    if a.localiser_boxes:
        from .evaluate import auto_items, load_localiser_weights

        tr, found = auto_items(tr, load_localiser_weights(a.localiser_boxes / "model_state.pt"),
                               cfg.preprocess, 0.5)
        tr = [replace(t, box=it.box) for t, it in zip(tr, prep.subset("train"), strict=True)]
        log.info("localiser boxes on the training images: %s", found["summary"])
    model, history = train(tr, va, cfg, out, resume=a.resume, progress=not a.no_progress)
    if not main_proc:
        return 0  # under torchrun only rank 0 evaluates and writes the bundle
    if a.skip_eval:
        return 0
    from .evaluate import evaluate_model

    if a.no_bundle:
        evaluate_model(model, va, out / "report", cfg.preprocess, cfg.roi_margin,
                       groups=prep.groups("val"), history=history,
                       split_summary=prep.dedup_summary, train_config=cfg.to_dict(),
                       seed=a.seed, progress=not a.no_progress)
        return 0
    from .bundle import build_and_evaluate_bundle

    build_and_evaluate_bundle(model, cfg, va, prep.groups("val"), history, prep.dedup_summary,
                              a.bundle_dir or out / "bundle", out / "report",
                              version=a.version, seed=a.seed, progress=not a.no_progress,
                              val_sites=prep.sites("val"))
    return 0


def cmd_bundle(a) -> int:
    """Assemble the app's bundle from a classifier run and a localiser run, and measure it."""
    from .bundle import build_and_evaluate_bundle
    from .evaluate import load_localiser_weights, load_weights
    from .train import HISTORY, TrainConfig

    run = Path(a.classifier)
    cfg = TrainConfig.from_dict(json.loads((run / "train_config.json").read_text()))
    model, _ = load_weights(run / "model_state.pt")
    history = json.loads((run / HISTORY).read_text()) if (run / HISTORY).exists() else None
    localiser = load_localiser_weights(Path(a.localiser) / "model_state.pt") \
        if a.localiser else None
    prep = _prepare(a)
    external = None
    if a.external:
        ext = prepare_sources(a, a.external, None)
        external = (ext.subset(None), ext.groups(None), ext.sites(None))
    build_and_evaluate_bundle(model, cfg, prep.subset("val"), prep.groups("val"), history,
                              prep.dedup_summary, a.bundle_dir, a.report_dir,
                              version=a.version, seed=a.seed, progress=not a.no_progress,
                              val_sites=prep.sites("val"), localiser=localiser,
                              min_confidence=a.min_confidence, default_mode=a.default_mode,
                              target_sensitivity=a.target_sensitivity, external=external)
    return 0


def cmd_localiser(a) -> int:
    from .localiser import LocaliserConfig, train_localiser
    from .pipeline import save_split

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    _log_to(out / "train.log")
    from rcdnet_desktop.core.preprocess import PreprocessConfig

    cfg = LocaliserConfig(epochs=a.epochs, batch_size=a.batch_size, lr=a.lr, seed=a.seed,
                          num_threads=a.threads, val_every=a.val_every,
                          max_steps_per_epoch=a.max_steps_per_epoch,
                          preprocess=PreprocessConfig(size=a.input_size))
    prep = _prepare(a)
    save_split(prep, out / "split.csv", a.data)
    (out / "train_config.json").write_text(json.dumps(cfg.to_dict(), indent=1))
    tr = prep.subset("train")
    log.info("localiser: %d training images with masks, %d validation images",
             sum(it.mask is not None for it in tr), len(prep.subset("val")))
    train_localiser(tr, prep.subset("val"), prep.sites("val"), cfg, out, resume=a.resume)
    return 0


def cmd_evaluate(a) -> int:
    from .evaluate import evaluate_weights

    if bool(a.data) == bool(a.external):
        raise SystemExit("evaluate: give --data (with --split: the internal validation side) "
                         "or --external (a site the model was not trained on), not both")
    if a.external:  # every readable image, resampled by patient / near-duplicate group
        prep = prepare_sources(a, a.external, None)
        items, groups, sites = prep.subset(None), prep.groups(None), prep.sites(None)
        summary = {"images": len(items), "malignant": sum(it.label for it in items),
                   "bootstrap_unit": "patient (patient codes from the site's manifest.csv, "
                                     "joined with near-duplicate images)",
                   "groups": len(set(groups)), "skipped_unreadable": prep.load_report.skipped}
    else:
        prep = _prepare(a)
        subset = a.subset if a.split else None  # no split: every readable image
        items, groups, sites = prep.subset(subset), prep.groups(subset), prep.sites(subset)
        summary = prep.dedup_summary
    evaluate_weights(a.weights, items, a.out, groups=groups, sites=sites, seed=a.seed,
                     progress=not a.no_progress, split_summary=summary,
                     fit_temperature=a.fit_temperature, localiser=a.localiser,
                     min_confidence=a.min_confidence, tta=a.tta,
                     external=bool(a.external))
    return 0


def cmd_paired(a) -> int:
    from .paired import auc_with_ci, paired_difference

    ref_mode = a.reference_mode or a.mode
    out = {"model": {"reports": [str(r) for r in a.report], "mode": a.mode,
                     "auc": auc_with_ci(a.report, a.mode, seed=a.seed)},
           "reference": {"report": str(a.reference), "mode": ref_mode,
                         "auc": auc_with_ci([a.reference], ref_mode, seed=a.seed)},
           "difference": paired_difference(a.report, a.reference, a.mode, seed=a.seed,
                                           reference_mode=ref_mode)}
    print(json.dumps(out, indent=1))
    return 0


def cmd_box_stability(a) -> int:
    from .box_stability import external_items, run_choose, run_measure, split_items

    if bool(a.split) == bool(a.external):
        raise SystemExit("box-stability: give --data with --split (the training sites' "
                         "validation side) or --external (a site never trained on), not both")
    if a.choose and a.external:
        raise SystemExit("box-stability: --choose chooses on the training sites' validation "
                         "images only (never on an external site)")
    if a.external:
        items = [it for root in a.external for it in external_items(root)]
    else:
        if not a.data:
            raise SystemExit("box-stability: --split needs --data")
        items = split_items(a.data, a.split, a.subset)
    if a.limit:
        items = items[:a.limit]
    from .data import site_name

    names = ", ".join(site_name(d) for d in (a.external or a.data))
    data = (f"{names}: every image with a mask" if a.external
            else f"{names}: the {a.subset} rows of {a.split}")
    if a.choose:
        run_choose(items, a.model_dir, a.out, a.n_boot, progress=not a.no_progress,
                   record_to=a.record, data=data, names=a.candidate)
    else:
        run_measure(items, a.model_dir, a.out, a.n_boot, progress=not a.no_progress,
                    record_to=a.record, key="external" if a.external else "internal",
                    data=data)
    return 0


def cmd_compare(a) -> int:
    from .compare import run_compare

    _log_to(Path(a.out) / "compare.log")
    prep = _prepare(a)
    extra = dict(kv.split("=", 1) for kv in a.include)
    run_compare(prep, _config_from_args(a), a.out, a.models, table=a.table,
                progress=not a.no_progress, extra_reports=extra)
    return 0


def cmd_guard(a) -> int:
    from .guard import run

    report = run(a.bundle, a.data, a.split, a.external or [], a.out, version=a.version,
                 shrinkage=a.shrinkage, quantile=a.quantile, copies=a.copies,
                 reexport=not a.keep_graph)
    print(f"guard threshold {report['threshold']:.2f}; not-breast images flagged "
          f"{report['other_all']['rate']:.1%}; report in {a.out / 'guard.md'}")
    return 0


def cmd_lexicon(a) -> int:
    from .lexicon import run

    report = run(a.bundle, a.data, a.split, a.external or [], a.out, seed=a.seed,
                 progress=not a.no_progress)
    shown = [e["name"] for e in report["descriptors"] if e["shown"]]
    print(f"lexicon heads: {len(report['descriptors'])} fitted, shown: "
          f"{', '.join(shown) or 'none'}; report in {a.out / 'lexicon.md'}")
    return 0


def cmd_site_norm(a) -> int:
    from .site_norm import measure

    measure(a.bundle, a.data, a.split, a.external or [], a.out, cache_dir=a.cache_dir,
            seed=a.seed, n_boot=a.n_boot, progress=not a.no_progress)
    print((a.out / "site_norm.md").read_text())
    return 0


def cmd_profile_transfer(a) -> int:
    from rcdnet_desktop.core.model.card import load_card

    from .profile_transfer import run

    report = run(a.report, load_card(a.bundle), a.out, a.mode, a.sensitivity, a.seed)
    for site, r in report["sites"].items():
        print(f"{site}: profile cut-off within {r['tolerance']:.2f} of {r['target']:.2f} in "
              f"{r['profile']['within_tolerance']:.0%} of {r['splits']} splits (card's cut-off: "
              f"{r['card']['within_tolerance']:.0%}); mean sensitivity "
              f"{r['profile']['mean']:.3f} vs {r['card']['mean']:.3f}")
    return 0


def cmd_cutoff_loso(a) -> int:
    from rcdnet_desktop.core.model.card import load_card

    from .cutoff_loso import run

    r = run(a.report, a.internal, load_card(a.bundle), a.out, a.mode, a.floor, a.seed)
    for t, sites in r["table"].items():
        print(f"target {t}: " + ", ".join(f"{s} held out {v['sensitivity']:.3f} sensitivity, "
                                          f"{v['specificity']:.3f} specificity"
                                          for s, v in sites.items()))
    if r["target"] is None:
        print(f"no target keeps every held-out site at sensitivity >= {a.floor:.2f}")
        return 1
    print(f"chosen target {r['target']:.2f}: cut-off {r['cutoff']:.4f} on the internal sites "
          f"(the card's: {r['card_cutoff']:.4f}); bundle with --target-sensitivity "
          f"{r['target']:.2f}")
    return 0


def cmd_retarget(a) -> int:
    from .retarget import retarget

    card = retarget(a.bundle, a.report, a.external_report, a.target_sensitivity, a.version,
                    a.rule_note, seed=a.seed)
    op = card.operating_point
    ext = op.get("at_threshold_external")
    print(f"cut-off {op['suspicious_threshold']:.4f}: internal sensitivity "
          f"{op['at_threshold_internal']['recall']['value']:.3f}"
          + (f", external {ext['recall']['value']:.3f} at specificity "
             f"{ext['specificity']['value']:.3f}" if ext else "")
          + f"; card version {card.version}")
    return 0


def cmd_heatmaps(a) -> int:
    from .heatmaps import run, write_card

    report = run(a.bundle, a.data or [], a.split, a.external or [], a.out, seed=a.seed,
                 cache_dir=a.cache_dir, progress=not a.no_progress, n_boot=a.n_boot)
    print((a.out / "heatmaps_tables.md").read_text())
    if a.write_card:
        bundle = write_card(a.bundle, report)
        print(f"heat-map figures written into {bundle / 'model_card.json'}")
    return 0


def _log_to(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    if not any(isinstance(h, logging.FileHandler) and Path(h.baseFilename) == path.resolve()
               for h in root.handlers):
        fh = logging.FileHandler(path)
        fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(fh)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="rcdnet-train", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("split", help="deduplicate and write the stratified group split CSV")
    _common_data(p)
    p.add_argument("--out", type=Path, required=True, help="split CSV to write")
    p.set_defaults(func=cmd_split)

    p = sub.add_parser("train", help="split + train + evaluate + bundle")
    _common_data(p)
    _recipe(p)
    p.add_argument("--out", type=Path, required=True, help="run folder")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--skip-eval", action="store_true")
    p.add_argument("--no-bundle", action="store_true")
    p.add_argument("--version", default="1.0.0")
    p.add_argument("--bundle-dir", type=Path, default=None,
                   help="where to write weights + model card (default OUT/bundle; pass "
                        "resources/model to replace the shipped bundle)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("bundle", help="assemble the app's bundle from a classifier run and a "
                                      "localiser run; evaluate internal + external; write card")
    _common_data(p)
    p.add_argument("--classifier", type=Path, required=True,
                   help="classifier run folder (model_state.pt, train_config.json)")
    p.add_argument("--localiser", type=Path, default=None,
                   help="localiser run folder (model_state.pt)")
    p.add_argument("--external", type=Path, action="append", default=[],
                   help="site(s) never trained on: measured with the card's temperature and "
                        "threshold and written into the card")
    p.add_argument("--default-mode", default="auto", choices=["auto", "fusion"])
    p.add_argument("--min-confidence", type=float, default=0.5,
                   help="localiser confidence below which the whole image is classified")
    p.add_argument("--target-sensitivity", type=float, default=0.9)
    p.add_argument("--version", default="2.0.0")
    p.add_argument("--bundle-dir", type=Path, required=True)
    p.add_argument("--report-dir", type=Path, required=True)
    p.set_defaults(func=cmd_bundle)

    p = sub.add_parser("localiser", help="train the lesion localiser on the masks (same split)")
    _common_data(p)
    from .localiser import LocaliserConfig

    d = LocaliserConfig()
    p.add_argument("--out", type=Path, required=True, help="run folder")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--threads", type=int, default=d.num_threads)
    p.add_argument("--val-every", type=int, default=d.val_every)
    p.add_argument("--input-size", type=int, default=d.preprocess.size,
                   help="input side: the classifier's (224) in the app; smaller only for tests")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--max-steps-per-epoch", type=int, default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_localiser)

    p = sub.add_parser("evaluate", help="metrics, calibration, localisation, plots, reports")
    _common_data(p, required=False)
    p.add_argument("--external", type=Path, action="append", default=[],
                   help="a site the model was not trained on (class folders, patient codes in "
                        "its manifest.csv): every image is evaluated, CIs resampled by patient; "
                        "repeat for several sites")
    p.add_argument("--localiser", type=Path, default=None,
                   help="localiser weights (a run's model_state.pt) when the bundle has none")
    p.add_argument("--min-confidence", type=float, default=None,
                   help="localiser confidence below which the whole image is used (default: "
                        "the card's, else 0)")
    p.add_argument("--tta", action="store_true",
                   help="average each view's logits with its mirror image's")
    p.add_argument("--weights", type=Path, required=True,
                   help="model folder (model card + weights) or a run's model_state.pt")
    p.add_argument("--out", type=Path, default=Path("runs/evaluate"))
    p.add_argument("--subset", default="val", choices=["train", "val"],
                   help="which side of --split to evaluate")
    p.add_argument("--fit-temperature", action="store_true",
                   help="refit the temperature on these images (default: use the card's)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("paired", help="paired AUC/accuracy difference of two evaluations of the "
                                      "same images (several --report: their mean, an ensemble)")
    p.add_argument("--report", type=Path, action="append", required=True,
                   help="evaluation folder (predictions_<mode>.npz); repeat for an ensemble")
    p.add_argument("--reference", type=Path, required=True)
    p.add_argument("--mode", default="whole")
    p.add_argument("--reference-mode", default=None, help="default: --mode")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_paired)

    p = sub.add_parser("guard", help="fit the input guard into a bundle and measure every "
                                     "intended-use check (breast sites vs other images)")
    p.add_argument("--bundle", type=Path, required=True, help="the bundle folder to update")
    p.add_argument("--data", type=Path, action="append", required=True,
                   help="a training site's data folder (repeat for each site of the split)")
    p.add_argument("--split", type=Path, required=True, help="the split CSV the bundle used")
    p.add_argument("--external", type=Path, action="append",
                   help="an external site, measured only (repeatable)")
    p.add_argument("--out", type=Path, required=True, help="folder for guard.md / guard.json")
    p.add_argument("--version", default=None, help="new model card version")
    p.add_argument("--shrinkage", type=float, default=0.1)
    p.add_argument("--quantile", type=float, default=99.5)
    p.add_argument("--copies", type=int, default=3,
                   help="re-exported copies of each image to fit and measure on (default 3)")
    p.add_argument("--keep-graph", action="store_true",
                   help="use the bundle's classifier graph as it is (it must already give the "
                        "guard's features) instead of exporting it again")
    p.set_defaults(func=cmd_guard)

    p = sub.add_parser("lexicon", help="fit the BI-RADS lexicon descriptor heads into a bundle "
                                       "and measure their agreement with the radiologists")
    p.add_argument("--bundle", type=Path, required=True, help="the bundle folder to update")
    p.add_argument("--data", type=Path, required=True,
                   help="the site whose manifest.csv carries the descriptors (BrEaST)")
    p.add_argument("--split", type=Path, required=True, help="the split CSV the bundle used")
    p.add_argument("--external", type=Path, action="append",
                   help="an external site, measured only (repeatable)")
    p.add_argument("--out", type=Path, required=True, help="folder for lexicon.md / .json")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_lexicon)

    p = sub.add_parser("box-stability", help="does P hold when the lesion box is drawn a "
                                             "little differently? before/after the card's box "
                                             "views, or --choose the views")
    p.add_argument("--data", type=Path, action="append", default=[],
                   help="training site folder(s) named in --split")
    p.add_argument("--split", type=Path, default=None, help="split CSV (its --subset rows)")
    p.add_argument("--subset", default="val")
    p.add_argument("--external", type=Path, action="append", default=[],
                   help="class-folder site never trained on (masks beside the images, "
                        "patients in manifest.csv)")
    p.add_argument("--model-dir", type=Path, default=None, help="bundle (default: bundled)")
    p.add_argument("--choose", action="store_true",
                   help="compare the candidate sets of views on the validation images")
    p.add_argument("--candidate", action="append", default=[],
                   help="with --choose: compare only this candidate (repeat; 'as given' is "
                        "always compared); default all")
    p.add_argument("--out", type=Path, default=None, help="JSON report to write")
    p.add_argument("--n-boot", type=int, default=2000)
    p.add_argument("--limit", type=int, default=0, help="first N images only (a smoke run)")
    p.add_argument("--record", type=Path, default=None, metavar="BUNDLE",
                   help="write the figures (with --choose: the chosen views, and the self-test "
                        "goldens measured again) into this bundle's model card")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_box_stability)

    p = sub.add_parser("heatmaps", help="measure how well the heat maps localise the lesion "
                                        "(internal validation and external sites)")
    _bundle_on_sites(p, "the split CSV the bundle used (its val rows are measured)",
                     "folder for heatmaps.json and heatmaps_tables.md", required=False)
    p.add_argument("--write-card", action="store_true",
                   help="write the figures into the bundle's model card (metrics.heat_maps)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_heatmaps)

    p = sub.add_parser("site-norm", help="measure re-estimating normalisation statistics on "
                                         "each site's own unlabelled images (cross-fitted)")
    _bundle_on_sites(p, "the split CSV the bundle used (its val rows are measured per site)",
                     "folder for site_norm.json and site_norm.md", required=True)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_site_norm)

    p = sub.add_parser("profile-transfer", help="how close a site profile's cut-off comes to "
                                                "the sensitivity asked for on new patients")
    _reports(p, "the bundle whose card gives the temperature and cut-off")
    p.add_argument("--out", type=Path, required=True, help="folder for profile_transfer.json")
    p.add_argument("--sensitivity", type=float, default=0.90)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_profile_transfer)

    p = sub.add_parser("cutoff-loso", help="the sensitivity target of the card's cut-off, "
                                           "chosen by leaving one site out")
    _reports(p, "the bundle whose card gives the temperature and current cut-off")
    p.add_argument("--internal", action="append", required=True,
                   help="a training site's name (as the reports record it); repeatable")
    p.add_argument("--out", type=Path, required=True, help="folder for cutoff_loso.json")
    p.add_argument("--floor", type=float, default=0.85,
                   help="the sensitivity no held-out site may fall below")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_cutoff_loso)

    p = sub.add_parser("retarget", help="move a bundle's suspicious cut-off to another "
                                        "sensitivity target and re-measure the card's figures")
    p.add_argument("--bundle", type=Path, required=True, help="the bundle folder to update")
    p.add_argument("--report", type=Path, required=True,
                   help="the bundle's internal evaluation report (predictions_<mode>.npz)")
    p.add_argument("--external-report", type=Path, default=None,
                   help="its external evaluation report")
    p.add_argument("--target-sensitivity", type=float, required=True)
    p.add_argument("--version", required=True, help="new model card version")
    p.add_argument("--rule-note", default="",
                   help="how the target was chosen, appended to the card's threshold rule")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_retarget)

    p = sub.add_parser("compare", help="baselines and ablations on the same split and recipe")
    _common_data(p)
    _recipe(p)
    p.add_argument("--out", type=Path, default=Path("runs/compare"))
    p.add_argument("--models", nargs="+", default=None)
    p.add_argument("--table", type=Path, default=Path("docs/training/comparison.md"))
    p.add_argument("--include", nargs="*", default=[], metavar="NAME=REPORT_JSON",
                   help="add an existing evaluation (e.g. the shipped model's) to the table")
    p.set_defaults(func=cmd_compare)
    return ap


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    a = build_parser().parse_args(argv)
    return a.func(a)


if __name__ == "__main__":
    sys.exit(main())
