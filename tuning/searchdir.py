"""The search directory: which one a `tune` command continues, and its metadata.

A search directory holds one search: its ``search.json`` records the architecture, the tuner and
the resolved base config. The same command finds it again (the newest matching
``RUNS_DIR/tune-<arch>-<dataset>-*``); an explicit ``--search-dir`` made for another architecture,
tuner or settings is refused with one line naming what differs.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from ser_keras.errors import ConfigError

META_FILE, OWNERS_FILE, PROJECT, BEST_DIR = "search.json", "workers.json", "kt", "best"
WORKER_MAY_DIFFER = ("data.data_dir", "data.cache_dir")  # the same corpus mounted elsewhere


def read_meta(path: Path) -> dict | None:
    try:
        return json.loads((Path(path) / META_FILE).read_text())
    except (OSError, ValueError):
        return None


def _flat(prefix: str, value, out: dict) -> dict:
    if isinstance(value, dict) and prefix.count(".") < 1:
        for key, item in value.items():
            _flat(f"{prefix}.{key}" if prefix else str(key), item, out)
    else:
        out[prefix] = value
    return out


def _plain(value):
    return json.loads(json.dumps(value, default=str))


def differences(saved: dict, config: dict, ignore=()) -> list[str]:
    """Settings that differ. The saved search is read in today's shape, as `train` reads a saved
    run (``runs.in_current_shape``): a setting added by a later version counts at its default."""
    from ser_keras.runs import in_current_shape

    a, b = _flat("", _plain(in_current_shape(saved)), {}), _flat("", _plain(config), {})
    return sorted(k for k in set(a) | set(b) if k not in ignore and a.get(k) != b.get(k))


def check_matches(path: Path, meta: dict, base, tuner: str, ignore=()) -> None:
    """One ConfigError line when ``path`` holds a different search than the one asked for."""
    if meta.get("arch") != base.arch:
        raise ConfigError(f"'{path}' holds a search for --arch {meta.get('arch')}, not {base.arch}; "
                          f"pass another --search-dir (or none: a new one is made under --runs-dir)")
    if meta.get("tuner") != tuner:
        raise ConfigError(f"'{path}' holds a {meta.get('tuner')} search, not {tuner}; use --tuner "
                          f"{meta.get('tuner')} to continue it, or another --search-dir")
    changed = differences(meta.get("config", {}), base.to_dict(), ignore)
    if changed:
        shown = ", ".join(changed[:6]) + (" ..." if len(changed) > 6 else "")
        raise ConfigError(f"'{path}' was searched with other settings ({shown}); continue it with the same "
                          f"options, or pass another --search-dir")


def locate(options, base, role) -> tuple[Path | None, dict | None]:
    """(the search directory to continue or to create, its metadata when it exists); None: a new
    one under --runs-dir (made once the data is loaded, so a bad corpus leaves nothing behind)."""
    if options.search_dir:
        path = Path(options.search_dir)
        meta = read_meta(path)
        if meta is not None:
            check_matches(path, meta, base, options.tuner, WORKER_MAY_DIFFER if role.kind == "worker" else ())
        elif role.kind != "worker" and path.is_dir() and any(path.iterdir()):
            raise ConfigError(f"'{path}' is not a search directory (no {META_FILE}) and not empty; pass a "
                              f"new folder or one an earlier `tune` made")
        return path, meta
    if role.kind == "worker":
        raise ConfigError("--worker needs --search-dir DIR: the chief's search folder, on a file system the "
                          "chief and every worker see")
    root = Path(options.runs_dir)
    for candidate in sorted(root.glob(f"tune-{base.arch}-{base.data.dataset}-*"), reverse=True):
        meta = read_meta(candidate)  # (a search saved before a setting existed matches at its default)
        if (meta and (meta.get("arch"), meta.get("tuner")) == (base.arch, options.tuner)
                and not differences(meta.get("config", {}), base.to_dict())):
            return candidate, meta
    return None, None


def write_meta(path: Path, base, options, objective: str, command: str, meta=None) -> dict:
    from ser_keras.reports import write_atomically

    meta = dict(meta or {})
    meta.setdefault("created", time.strftime("%Y-%m-%d %H:%M:%S"))
    meta.update({"arch": base.arch, "dataset": base.data.dataset, "tuner": options.tuner, "objective": objective,
                 "max_trials": options.max_trials if options.max_trials is not None else meta.get("max_trials"),
                 "config": _plain(base.to_dict()), "command": command})
    text = json.dumps(meta, indent=2, sort_keys=True)
    write_atomically(path / META_FILE, lambda tmp: Path(tmp).write_text(text))
    return meta


def read_owners(path: Path) -> dict:
    try:
        return dict(json.loads((path / OWNERS_FILE).read_text()))
    except (OSError, ValueError):
        return {}
