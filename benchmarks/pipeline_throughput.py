"""Batches per second of the tf.data training pipeline with augmentation on and off.

    python benchmarks/pipeline_throughput.py [--arch bilstm_att_mtl] [--dataset synthetic] [--batches 20]

Both pipelines read the same prepared cache in the same process; the ratio (on / off) is what
to compare across machines. The target is augmentation costing less than half the throughput
(ratio > 0.5). Prints JSON lines.
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ser_keras import pipeline  # noqa: E402
from ser_keras.config import resolve_config  # noqa: E402
from ser_keras.training import load_data, make_targets  # noqa: E402


def batches_per_second(config, data, fold, targets, augment: bool, batches: int) -> float:
    config.features.augment = augment
    ds = pipeline.waveform_dataset(config, data.prepared, fold.train, targets, training=True, seed=0,
                                   augmentation=pipeline.build_augmentation(config.features, 0), cache=False)
    ds = ds.repeat()
    iterator = iter(ds)
    next(iterator)  # tracing and the first read are not throughput
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--arch", default="bilstm_att_mtl")
    parser.add_argument("--dataset", default="synthetic")
    parser.add_argument("--data-dir")
    parser.add_argument("--batches", type=int, default=20)
    args = parser.parse_args()
    config = resolve_config(args.arch, args.dataset, **{"data.data_dir": args.data_dir})
    data = load_data(config, progress=False)
    fold = data.folds[0]
    targets = make_targets(config, data, fold)
    off = batches_per_second(config, data, fold, targets, False, args.batches)
    on = batches_per_second(config, data, fold, targets, True, args.batches)
    for name, value in (("augmentation off", off), ("augmentation on", on)):
        print(json.dumps({"arch": args.arch, "dataset": args.dataset, "pipeline": name,
                          "batch_size": config.train.batch_size, "batches_per_second": round(value, 3)}))
    print(f"{args.arch} pipeline augmentation on/off throughput ratio: {on / off:.2f}")


if __name__ == "__main__":
    main()
