#!/usr/bin/env python
"""ser_keras command line: a thin argparse front that calls one package function per command.

Errors the user can fix (``SERError``) become one line on stderr and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# Keep TensorFlow's start-up chatter off stderr, where errors are one line. oneDNN's custom
# CPU ops announce themselves there whatever the log level, and make results depend on the
# order of floating-point operations: off by default (export TF_ENABLE_ONEDNN_OPTS=1 for them).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from ser_keras.errors import ConfigError, SERError  # noqa: E402

ARCH_CHOICES = ("cldnn", "bigru_mha", "strl_ser", "bilstm_att_mtl")


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad option as one line (and exit 2), like every other error."""

    def error(self, message):
        self.exit(2, f"error: {message} (see: {self.prog} --help)\n")


def cmd_synth(args):
    from ser_keras.corpora import synthetic

    root = synthetic.generate(args.to, speakers=args.speakers, seed=args.seed)
    print(f"synthetic corpus written to {root}")


def cmd_info(args):
    from ser_keras.corpora.base import find_duplicates
    from ser_keras.datasets import describe_scan, probe_durations, scan_dataset

    scan = scan_dataset(args.dataset, args.data_dir, merges=args.merge)
    durations = probe_durations(scan)
    duplicates = find_duplicates(list(scan.manifest["path"]))
    print(describe_scan(scan, durations, duplicates))


def cmd_prepare(args):
    from ser_keras.config import resolve_config
    from ser_keras.datasets import scan_dataset
    from ser_keras.prepare import prepare_corpus

    config = resolve_config(args.arch, args.dataset)
    rate = args.sample_rate or config.features.sample_rate
    is10 = args.is10 or config.features.frontend == "is10"
    scan = scan_dataset(args.dataset, args.data_dir)
    prepared = prepare_corpus(scan.manifest, rate, cache_dir=args.cache_dir, is10=is10)
    skipped = list(scan.skipped) + list(prepared.skipped.itertuples(index=False, name=None))
    print(f"prepared {len(prepared)} utterances at {rate} Hz{' with IS10 features' if is10 else ''}")
    print(f"cache: {prepared.directory}")
    print(f"skipped: {len(skipped)}")
    for path, reason in skipped:
        print(f"  {path}: {reason}")


def resolved_config(args):
    from ser_keras.config import resolve_config

    return resolve_config(args.arch, args.dataset, overrides=args.set, **{
        "data.data_dir": args.data_dir, "data.protocol": args.protocol, "data.seed": args.seed,
        "data.cache_dir": args.cache_dir, "train.epochs": args.epochs, "train.batch_size": args.batch_size})


def cmd_train(args):
    from ser_keras.metrics import format_metrics
    from ser_keras.training import train

    run_dir, metrics = train(resolved_config(args), runs_dir=args.runs_dir, verbose=args.verbose)
    print(format_metrics(metrics))
    print(f"run directory: {run_dir}")


def cmd_evaluate(args):
    from ser_keras.evaluation import evaluate_run
    from ser_keras.metrics import format_metrics

    if args.data_dir and not args.dataset:
        raise ConfigError("--data-dir needs --dataset (which corpus layout to read)")
    metrics, out = evaluate_run(args.run_dir, dataset=args.dataset, data_dir=args.data_dir)
    print(format_metrics(metrics))
    print(f"evaluation written to {out}")


def cmd_cv(args):
    from ser_keras.evaluation import format_fold_table, run_cv

    table, out = run_cv(resolved_config(args), runs_dir=args.runs_dir, verbose=args.verbose)
    print(table.to_string(float_format=lambda v: f"{100 * v:.2f}"))
    print(format_fold_table(table))
    print(f"cross-validation summary: {out}")


def cmd_export(args):
    from ser_keras.export import export_run

    path = export_run(args.run_dir, name=args.name, version=args.version, force=args.force, root=args.root)
    config = (Path(args.root) / "models.config").resolve()
    print(f"exported {path}")
    print(f"serve it: tensorflow_model_server --rest_api_port=8501 --model_config_file={config}")


def cmd_predict(args):
    from ser_keras.inference import format_predictions, predict_files

    table = predict_files(args.source, args.inputs, csv_path=args.csv)
    print(format_predictions(table, table.attrs["skipped"]))
    if args.csv:
        print(f"predictions written to {args.csv}")


def cmd_summary(args):
    from ser_keras.models import summary_text

    print(summary_text(args.arch, args.dataset).rstrip())


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="cli.py", description="ser_keras: speech emotion recognition with Keras 3")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    def data_options(p, dataset_default="synthetic"):
        p.add_argument("--dataset", default=dataset_default,
                       help="ravdess, iemocap, emodb, styletalk, tess, savee, cremad, csv or synthetic")
        p.add_argument("--data-dir", help="corpus folder (synthetic: generated on first use when omitted)")

    p = commands.add_parser("synth", help="generate the synthetic demo corpus (RAVDESS layout)")
    p.add_argument("--to", required=True, help="target folder (must not exist or be empty)")
    p.add_argument("--speakers", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_synth)

    p = commands.add_parser("info", help="summarise a corpus: utterances, speakers, classes, skips, duplicates")
    data_options(p)
    p.add_argument("--merge", action="append", default=[], help="label merge, e.g. calm_to_neutral (repeatable)")
    p.set_defaults(func=cmd_info)

    p = commands.add_parser("prepare", help="decode and resample once into the cache (progress bar)")
    data_options(p)
    p.add_argument("--arch", choices=ARCH_CHOICES, default="cldnn", help="sets the sample rate and features")
    p.add_argument("--sample-rate", type=int, help="override the architecture's sample rate")
    p.add_argument("--is10", action="store_true", help="also compute openSMILE IS10 features (strl_ser)")
    p.add_argument("--cache-dir", help="cache root (default $SER_KERAS_CACHE or ~/.cache/ser_keras)")
    p.set_defaults(func=cmd_prepare)

    def run_options(p):
        data_options(p)
        p.add_argument("--arch", choices=ARCH_CHOICES, required=True)
        p.add_argument("--protocol", choices=("paper", "speaker", "loso"), help="default: paper")
        p.add_argument("--epochs", type=int)
        p.add_argument("--batch-size", type=int)
        p.add_argument("--seed", type=int)
        p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                       help="override any setting, e.g. train.learning_rate=1e-4 or model.heads=4")
        p.add_argument("--cache-dir", help="cache root (default $SER_KERAS_CACHE or ~/.cache/ser_keras)")
        p.add_argument("--runs-dir", default="runs", help="where run directories are created")
        p.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2), help="Keras progress output")

    p = commands.add_parser("train", help="train one fold of a protocol; writes a run directory")
    run_options(p)
    p.set_defaults(func=cmd_train)

    p = commands.add_parser("evaluate", help="re-score a trained run (its test part, or another corpus)")
    p.add_argument("run_dir")
    p.add_argument("--dataset", help="evaluate on this corpus instead (labels mapped onto the model's classes)")
    p.add_argument("--data-dir")
    p.set_defaults(func=cmd_evaluate)

    p = commands.add_parser("cv", help="train and test every fold of a protocol; mean ± std table")
    run_options(p)
    p.set_defaults(func=cmd_cv)

    p = commands.add_parser("export", help="export a run as a TF Serving SavedModel: ROOT/NAME/VERSION/")
    p.add_argument("run_dir", metavar="RUN_DIR", help="run directory written by train")
    p.add_argument("--name", help="model name (default: <arch>-<dataset>)")
    p.add_argument("--version", type=int, help="version number (default: the next free one)")
    p.add_argument("--force", action="store_true", help="overwrite an existing version")
    p.add_argument("--root", default="saved_models", help="where exports and models.config live")
    p.set_defaults(func=cmd_export)

    p = commands.add_parser("predict", help="label audio files / folders with a run or an exported SavedModel")
    p.add_argument("source", metavar="RUN_DIR|SAVED_MODEL_DIR")
    p.add_argument("inputs", nargs="+", metavar="FILE_OR_DIR")
    p.add_argument("--csv", metavar="OUT", help="also write the table with per-class probabilities as CSV")
    p.set_defaults(func=cmd_predict)

    p = commands.add_parser("summary", help="print a model's Keras summary and parameter count")
    p.add_argument("--arch", choices=ARCH_CHOICES, required=True)
    p.add_argument("--dataset", default="ravdess")
    p.set_defaults(func=cmd_summary)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except SERError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("error: interrupted; nothing half-written was kept (run the same train command again to resume)",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
