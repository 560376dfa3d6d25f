"""Any corpus described by a manifest CSV: ``path,label[,speaker][,split]`` (+ any other columns).

``data_dir`` is the CSV file itself or a folder holding ``manifest.csv``. Paths are relative
to the CSV's folder (absolute paths are kept). Labels go through ``labels.normalise_label``,
so 'Anger', 'fear' or 'ps' line up with the other corpora; labels it does not know are kept,
lower-cased, as the corpus' own classes. Extra columns travel along unchanged.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..errors import DataError
from ..labels import normalise_label
from .base import MANIFEST_COLUMNS, CorpusScan, make_manifest, require_dir, require_rows

CORPUS = "csv"

REQUIRED_COLUMNS = ("path", "label")
SPLITS = {
    "train": "train", "training": "train",
    "val": "val", "valid": "val", "validation": "val", "dev": "val",
    "test": "test", "eval": "test", "evaluation": "test",
}


def manifest_file(data_dir) -> Path:
    """The CSV to read: ``data_dir`` itself, or ``data_dir/manifest.csv``."""
    given = Path(data_dir).expanduser() if data_dir is not None else None
    if given is not None and given.is_file():
        return given
    root = require_dir(data_dir, CORPUS)
    candidate = root / "manifest.csv"
    if not candidate.is_file():
        raise DataError(f"csv: no manifest.csv in '{root}'; pass the CSV file itself as --data-dir")
    return candidate


def _load(csv_path: Path) -> pd.DataFrame:
    try:
        table = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise DataError(f"csv: cannot parse '{csv_path}' as CSV ({type(error).__name__}); expected columns path,label[,speaker][,split]") from None
    table.columns = [str(c).strip().lower() for c in table.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise DataError(f"csv: '{csv_path}' lacks column(s) {', '.join(missing)}; expected columns path,label[,speaker][,split]")
    return table


def _row(record: dict, base: Path) -> dict | tuple[str, str]:
    """One manifest row, or (path, reason) when the row cannot be used."""
    raw_path, raw_label = record["path"].strip(), record["label"].strip()
    path = Path(raw_path).expanduser()
    path = path if path.is_absolute() else base / path
    if not raw_path or not raw_label:
        return str(path), "empty path or label"
    extras = {k: v for k, v in record.items() if k not in MANIFEST_COLUMNS}
    if "split" in record:
        split = SPLITS.get(record["split"].strip().lower())
        if split is None:
            return str(path), f"unknown split '{record['split']}' (use train, val or test)"
        extras["split"] = split
    if not path.is_file():
        return str(path), "audio missing"
    return {
        "path": str(path.absolute()),
        "label": normalise_label(raw_label),
        "speaker": record.get("speaker", "").strip() or "unknown",
        **extras,
    }


def read(data_dir, **_options) -> CorpusScan:
    """Read a manifest CSV (file, or folder with ``manifest.csv``)."""
    csv_path = manifest_file(data_dir)
    table = _load(csv_path)
    rows, skipped = [], []
    for record in table.to_dict("records"):
        row = _row(record, csv_path.parent)
        if isinstance(row, tuple):
            skipped.append(row)
        else:
            rows.append(row)
    return require_rows(CorpusScan(make_manifest(rows, CORPUS), skipped), CORPUS, csv_path)
