#!/usr/bin/env python
"""ser_keras command line: a thin argparse front that calls one package function per command.

Errors the user can fix (``SERError``) become one line on stderr and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# Keep TensorFlow's start-up chatter (including oneDNN's INFO line) off stderr, where errors are
# one line, with TensorFlow's own log level. oneDNN stays on (ser_keras/__init__.py asks for it on
# every x86 CPU): it makes CPU training about 2x faster (benchmarks/training_throughput.py).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from ser_keras import recipes  # noqa: E402  (names only: no Keras import)
from ser_keras.errors import ConfigError, SERError  # noqa: E402

ARCH_CHOICES = tuple(recipes.names())


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
    from ser_keras.datasets import describe_scan, probe_durations
    from ser_keras.loading import scan_for

    config = resolve_data_config(args)
    config.data.merges = list(args.merge)  # the corpus as it is, unless merges are asked for
    scan = scan_for(config)
    durations = probe_durations(scan)
    duplicates = find_duplicates(list(scan.manifest["path"]))
    print(describe_scan(scan, durations, duplicates))


def resolve_data_config(args, arch="cldnn"):
    """The settings of a command that only reads a corpus (info, prepare): --set data.* applies."""
    from ser_keras.config import resolve_config

    return resolve_config(arch, args.dataset, overrides=args.set, **{
        "data.data_dir": args.data_dir, "data.cache_dir": getattr(args, "cache_dir", None)})


def cmd_prepare(args):
    from ser_keras.loading import scan_for
    from ser_keras.prepare import prepare_corpus
    from ser_keras.recipes.base import SEGMENTS

    config = resolve_data_config(args, args.arch)
    rate = args.sample_rate or config.features.sample_rate
    is10 = args.is10 or config.recipe.input_kind == SEGMENTS
    scan = scan_for(config)
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


def progress_verbosity(args) -> int:
    """Keras' progress bar on a terminal; one line per epoch in a redirected log (no ANSI codes)."""
    if args.verbose is not None:
        return args.verbose
    return 1 if sys.stdout.isatty() else 2


def cmd_train(args):
    from ser_keras.distribute import initialize_from_env
    from ser_keras.metrics import format_metrics
    from ser_keras.training import train

    config = resolved_config(args)
    initialize_from_env()
    run_dir, metrics = train(config, runs_dir=args.runs_dir, verbose=progress_verbosity(args))
    print(format_metrics(metrics))
    print(f"run directory: {run_dir}")


def cmd_evaluate(args):
    from ser_keras.runs import check_run_dir

    if args.data_dir and not args.dataset:
        raise ConfigError("--data-dir needs --dataset (which corpus layout to read)")
    check_run_dir(args.run_dir)  # refuse a wrong folder before the seconds Keras takes to import
    from ser_keras.evaluation import evaluate_run, present_classes
    from ser_keras.metrics import format_metrics

    metrics, out = evaluate_run(args.run_dir, dataset=args.dataset, data_dir=args.data_dir,
                                target_norm=args.target_norm)
    print(format_metrics(metrics, classes=present_classes(metrics)))
    print(f"evaluation written to {out}")


def cmd_baseline(args):
    from ser_keras.baseline import run_baseline
    from ser_keras.metrics import format_metrics

    metrics, out = run_baseline(args.run_dir, data_dir=args.data_dir)
    print(format_metrics(metrics))
    print(f"baseline written to {out}")


def cmd_cv(args):
    from ser_keras.cv import format_fold_table, run_cv
    from ser_keras.distribute import initialize_from_env

    config = resolved_config(args)
    initialize_from_env()
    table, out = run_cv(config, runs_dir=args.runs_dir, verbose=progress_verbosity(args))
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


def cmd_download(args):
    import shlex

    from ser_keras.corpora.download import download_corpus

    root = download_corpus(args.corpus, args.to, url=args.url, sha256=args.sha256)
    print(f"data dir: {root}")
    print(f"next: python cli.py info --dataset {args.corpus} --data-dir {shlex.quote(str(root))}")


def cmd_summary(args):
    from ser_keras.assembly import summary_text

    print(summary_text(args.arch, args.dataset).rstrip())


def cmd_tune(args):
    from tuning.cluster import role_from
    from tuning.search import SearchOptions, check_options, run_search

    options = SearchOptions(tuner=args.tuner, max_trials=args.max_trials, runs_dir=args.runs_dir,
                            search_dir=args.search_dir, timeout=args.timeout, connect_timeout=args.connect_timeout,
                            verbose=args.verbose or 0)
    check_options(options)
    role = role_from(args.chief, args.worker, args.oracle)
    result = run_search(resolved_config(args), options, role, fixed_keys=[s.partition("=")[0].strip() for s in args.set])
    if result.run_dir is not None:
        from ser_keras.metrics import format_metrics

        print(format_metrics(result.metrics))
        print(f"trials: {result.search_dir / 'trials.csv'}  plot: {result.search_dir / 'search.png'}")
        print(f"best run directory: {result.run_dir}")


def set_option(p):
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override any setting, e.g. train.learning_rate=1e-4, model.heads=4, "
                        "data.vocal_channel=song")


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
    set_option(p)
    p.set_defaults(func=cmd_info)

    p = commands.add_parser("prepare", help="decode and resample once into the cache (progress bar)")
    data_options(p)
    p.add_argument("--arch", choices=ARCH_CHOICES, default="cldnn", help="sets the sample rate and features")
    p.add_argument("--sample-rate", type=int, help="override the architecture's sample rate")
    p.add_argument("--is10", action="store_true", help="also compute openSMILE IS10 features (strl_ser)")
    p.add_argument("--cache-dir", help="cache root (default $SER_KERAS_CACHE or ~/.cache/ser_keras)")
    set_option(p)
    p.set_defaults(func=cmd_prepare)

    def run_options(p):
        data_options(p)
        p.add_argument("--arch", choices=ARCH_CHOICES, required=True)
        p.add_argument("--protocol", choices=("paper", "speaker", "loso"), help="default: paper")
        p.add_argument("--epochs", type=int)
        p.add_argument("--batch-size", type=int)
        p.add_argument("--seed", type=int)
        set_option(p)
        p.add_argument("--cache-dir", help="cache root (default $SER_KERAS_CACHE or ~/.cache/ser_keras)")
        p.add_argument("--runs-dir", default="runs", help="where run directories are created")
        p.add_argument("--verbose", type=int, choices=(0, 1, 2),
                       help="Keras progress output (default: bar on a terminal, a line per epoch otherwise)")

    p = commands.add_parser("train", help="train one fold of a protocol; writes a run directory")
    run_options(p)
    p.set_defaults(func=cmd_train)

    p = commands.add_parser("evaluate", help="re-score a trained run (its test part, or another corpus)")
    p.add_argument("run_dir")
    p.add_argument("--dataset", help="evaluate on this corpus instead (labels mapped onto the model's classes)")
    p.add_argument("--data-dir")
    p.add_argument("--target-norm", action="store_true",
                   help="cross-corpus: take the normalisation statistics from the evaluated corpus (labels unused)")
    p.set_defaults(func=cmd_evaluate)

    p = commands.add_parser("baseline", help="RBF SVM on IS10 functionals, on exactly a run's split")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--data-dir", metavar="DIR", help="the corpus' folder on this machine, for a run trained on "
                                                     "another (its recorded file paths are re-rooted here)")
    p.set_defaults(func=cmd_baseline)

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

    p = commands.add_parser("download", help="download, verify and extract a public corpus (resumable)")
    p.add_argument("corpus", choices=("ravdess", "emodb"))
    p.add_argument("--to", required=True, metavar="DIR", help="folder for the archive; the corpus goes to DIR/<corpus>")
    p.add_argument("--url", help="download from this mirror instead of the built-in source")
    p.add_argument("--sha256", metavar="HEX", help="refuse the archive unless its SHA-256 is this")
    p.set_defaults(func=cmd_download)

    p = commands.add_parser("tune", help="KerasTuner search over an architecture's hyperparameters; the best "
                                         "trial becomes a run directory")
    run_options(p)
    p.add_argument("--tuner", choices=("hyperband", "bayesian", "random"), default="hyperband",
                   help="KerasTuner algorithm (default: hyperband, with --epochs as its max epochs)")
    p.add_argument("--max-trials", type=int, help="trials to run (default: 20; hyperband: its own schedule)")
    p.add_argument("--search-dir", help="search folder to create or continue (default: the newest matching "
                                        "RUNS_DIR/tune-<arch>-<dataset>-*, else a new one)")
    role = p.add_mutually_exclusive_group()
    role.add_argument("--chief", action="store_true", help="serve the oracle to workers (KerasTuner chief)")
    role.add_argument("--worker", metavar="NAME", help="run trials for the chief at --oracle")
    p.add_argument("--oracle", metavar="HOST:PORT", help="chief: address to listen on (default 0.0.0.0:8000); "
                                                         "worker: the chief's address")
    p.add_argument("--timeout", type=float, default=1800, metavar="SECONDS",
                   help="a worker silent this long is dropped (its trial fails); a chief that hears from no "
                        "worker this long, or a worker that gets no answer, stops with an error")
    p.add_argument("--connect-timeout", type=float, default=60, metavar="SECONDS",
                   help="how long a worker waits for the chief to answer at start")
    p.set_defaults(func=cmd_tune)

    p = commands.add_parser("summary", help="print a model's Keras summary and parameter count")
    p.add_argument("--arch", choices=ARCH_CHOICES, required=True)
    p.add_argument("--dataset", default="ravdess")
    p.set_defaults(func=cmd_summary)
    return parser


# Commands that never need Keras (fast, and they work without TensorFlow or JAX).
NO_KERAS = ("synth", "info", "download", "baseline")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command not in NO_KERAS:
            from ser_keras.startup import import_keras_quietly

            import_keras_quietly()
        args.func(args)
    except SERError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("error: interrupted; nothing half-written was kept (run the same command again to continue)",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
