"""Download, verify and safely extract a public corpus: ``cli.py download ravdess|emodb --to DIR``.

Only the standard library talks HTTP (``urllib``), so nothing beyond the project's
requirements is needed. The steps are ordered so that a failure at any point leaves
``DIR`` either as it was or resumable, never holding a half-extracted corpus:

1. fetch into ``DIR/<archive>.part``, resuming with an HTTP Range request when a
   ``.part`` is already there (kept on an interrupted transfer);
2. verify the whole file (``--sha256``; for the built-in RAVDESS URL also Zenodo's MD5),
   deleting it on a mismatch so a retry starts clean;
3. check every member of the archive before writing any (no ``..``, absolute paths,
   links or device files), extract into a hidden folder inside ``DIR`` and rename it to
   ``DIR/<corpus>`` only once complete.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import tarfile
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from urllib.parse import unquote, urlparse

from tqdm.auto import tqdm

from ..errors import ConfigError, DownloadError


@dataclass(frozen=True)
class Source:
    url: str
    md5: str | None  # what the publisher lists, checked only for this exact URL
    about: str


SOURCES = {
    # Zenodo record 1188976 (Livingstone & Russo 2018, CC BY-NC-SA 4.0), speech audio only.
    # Zenodo lists an MD5 per file, not a SHA-256: md5:bc696df654c87fed845eb13823edef8a,
    # 208,468,073 bytes (https://zenodo.org/records/1188976, "Files"; the same value is
    # quoted by independent projects that verified their download against it).
    "ravdess": Source("https://zenodo.org/records/1188976/files/Audio_Speech_Actors_01-24.zip?download=1",
                      "bc696df654c87fed845eb13823edef8a", "RAVDESS speech audio, Zenodo record 1188976"),
    # The official Emo-DB site publishes no checksum of any kind (and serves plain http).
    "emodb": Source("http://emodb.bilderbar.info/download/download.zip", None,
                    "Emo-DB, emodb.bilderbar.info (no published checksum)"),
}

BLOCK = 1 << 16
TIMEOUT_S = 60


def download_corpus(name, to, url=None, sha256=None, progress=True) -> Path:
    """Fetch, verify and extract corpus ``name`` under ``to``; returns the folder for ``--data-dir``."""
    if name not in SOURCES:
        raise ConfigError(f"cannot download '{name}'; choose one of: {', '.join(SOURCES)}")
    source = SOURCES[name]
    sha256 = _check_sha256(sha256)
    url = url or source.url
    if urlparse(url).scheme not in ("http", "https"):
        raise ConfigError(f"--url must be an http:// or https:// address, not '{url}'")
    md5 = source.md5 if url == source.url else None  # a mirror may repackage: only --sha256 applies
    to = Path(to).expanduser().resolve()
    target = to / name
    if target.exists() and not target.is_dir():
        raise DownloadError(f"'{target}' exists and is not a folder; choose another --to")
    if target.is_dir() and any(target.iterdir()):
        print(f"{target} already exists; nothing downloaded (remove it to download again)")
        return target
    try:
        to.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DownloadError(f"cannot create '{to}': {error.strerror}") from None
    _remove_leftovers(to, name)
    archive = to / _archive_name(url, name)
    if not archive.exists():
        part = archive.with_name(archive.name + ".part")
        fetch(url, part, progress)
        part.replace(archive)
    verify(archive, sha256, md5, source.about if url == source.url else url)
    extract(archive, target)
    archive.unlink()  # extracted and verified: keeping 200 MB of zip around helps nobody
    return target


def _check_sha256(value):
    if value is None:
        return None
    value = value.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", value):
        raise ConfigError(f"--sha256 must be 64 hexadecimal digits, not '{value}'")
    return value


def _archive_name(url, name) -> str:
    """``<corpus>-<the URL's file name>``, safe characters only: never a path, never a user's own file."""
    base = re.sub(r"[^A-Za-z0-9._-]", "_", Path(unquote(urlparse(url).path)).name)
    return f"{name}-{base or 'download'}"


def _remove_leftovers(to: Path, name: str):
    # A killed process (kill -9, power loss) cannot clean up its extraction folder.
    for stale in to.glob(f".{name}-extracting-*"):
        shutil.rmtree(stale, ignore_errors=True)


# --- HTTP -------------------------------------------------------------------------------

def fetch(url: str, part: Path, progress=True):
    """Download ``url`` into ``part``, resuming from its current size when the server allows."""
    have = part.stat().st_size if part.exists() else 0
    response = _open(url, have)
    if response is None:  # 416: the .part is no prefix of this file (it changed); start over
        part.unlink()
        have, response = 0, _open(url, 0)
    with response:
        if have and response.status == 206:
            total = _range_total(response, have, part)
        else:  # 200: the server ignored Range, so the old bytes cannot be trusted as a prefix
            have, total = 0, _int(response.headers.get("Content-Length"))
        bar = tqdm(total=total, initial=have, desc="download", unit="B", unit_scale=True,
                   unit_divisor=1024, disable=not progress)
        stopped = None
        with bar, open(part, "ab" if have else "wb") as out:
            try:
                for block in iter(lambda: response.read(BLOCK), b""):
                    out.write(block)
                    bar.update(len(block))
            except (OSError, HTTPException) as error:  # a dropped connection: the .part stays for a resume
                stopped = error
    size = part.stat().st_size
    if stopped or (total is not None and size != total):
        raise DownloadError(f"download stopped at {size} of {total} bytes; run the same command again to resume")


def _open(url: str, start: int):
    headers = {"User-Agent": "ser_keras-download"}
    if start:
        headers["Range"] = f"bytes={start}-"
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT_S)
    except urllib.error.HTTPError as error:
        if error.code == 416 and start:
            return None
        raise DownloadError(f"{url}: HTTP {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError, HTTPException) as error:
        reason = getattr(error, "reason", error)
        raise DownloadError(f"cannot download {url}: {reason} (check the network, or pass --url for a mirror)") \
            from None


def _range_total(response, have: int, part: Path):
    """The full size from ``Content-Range: bytes START-END/TOTAL``, after checking START."""
    match = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", response.headers.get("Content-Range", "").strip())
    if not match or int(match[1]) != have:
        part.unlink()
        raise DownloadError("the server answered a different byte range than asked; run the command again")
    return None if match[2] == "*" else int(match[2])


def _int(text):
    return int(text) if text and text.isdigit() else None


# --- verification -------------------------------------------------------------------------

def verify(archive: Path, sha256, md5, about: str):
    """Check the archive against the known digests; a mismatch deletes it and raises."""
    digests = {"sha256": hashlib.sha256(), "md5": hashlib.md5()}
    with open(archive, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            for digest in digests.values():
                digest.update(block)
    got = {kind: digest.hexdigest() for kind, digest in digests.items()}
    for kind, want in (("sha256", sha256), ("md5", md5)):
        if want and got[kind] != want:
            archive.unlink()
            raise DownloadError(f"{kind.upper()} mismatch for {archive.name}: expected {want}, got {got[kind]}; "
                                "the file was deleted (a wrong --sha256, or a corrupt or tampered download)")
    if sha256:
        print(f"sha256 verified: {got['sha256']}")
    elif md5:
        print(f"md5 verified against the publisher's; sha256: {got['sha256']} (pin it with --sha256)")
    else:
        print(f"no checksum known for {about}, so nothing was verified; "
              f"sha256: {got['sha256']} (pin it with --sha256)")


# --- safe extraction ----------------------------------------------------------------------

def extract(archive: Path, target: Path):
    """Check every member, then extract into a hidden folder beside ``target`` and rename it."""
    tmp = target.with_name(f".{target.name}-extracting-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        with _Archive(archive) as (members, unpack):
            for name, kind in members:
                _check_member(name, kind, tmp)
            unpack(tmp)
        if target.is_dir():
            target.rmdir()  # an empty folder (checked by the caller) is replaced
        tmp.rename(target)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error) as error:
        archive.unlink()
        raise DownloadError(f"{archive.name} is truncated or corrupt ({error}); it was deleted; "
                            "run the same command again, or try another --url") from None
    except DownloadError as error:
        archive.unlink()
        raise DownloadError(f"{error}; nothing was extracted and the archive was deleted") from None
    except OSError as error:  # e.g. a full disk: the archive itself is fine, keep it
        raise DownloadError(f"cannot extract {archive.name} into '{target.parent}': {error.strerror or error}") \
            from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class _Archive:
    """Context manager giving ``(members as (name, kind), unpack(dest))`` for a zip or tar(.gz)."""

    def __init__(self, archive: Path):
        with open(archive, "rb") as handle:
            head = handle.read(4)
        if head[:2] == b"PK":
            self.handle = zipfile.ZipFile(archive)
        elif head[:2] == b"\x1f\x8b" or tarfile.is_tarfile(archive):
            self.handle = tarfile.open(archive, "r:*")
        else:
            raise DownloadError(f"{archive.name} is neither a zip nor a tar(.gz) archive (an error page? check --url)")

    def __enter__(self):
        if isinstance(self.handle, zipfile.ZipFile):
            members = [(i.filename, "link" if stat.S_ISLNK(i.external_attr >> 16) else "file")
                       for i in self.handle.infolist()]
            return members, self.handle.extractall
        tar_members = self.handle.getmembers()  # reads the whole stream: a truncated .gz fails here
        members = [(m.name, "file" if m.isfile() or m.isdir() else "link" if m.issym() or m.islnk() else "special")
                   for m in tar_members]
        data_filter = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        return members, lambda dest: self.handle.extractall(dest, members=tar_members, **data_filter)

    def __exit__(self, *exc):
        self.handle.close()


def _check_member(name: str, kind: str, dest: Path):
    """Refuse (before anything is written) a member that could land outside ``dest``."""
    if kind != "file":
        raise DownloadError(f"archive member '{name}' is a {kind}; refusing the whole archive")
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name):
        raise DownloadError(f"archive member '{name}' has an absolute path; refusing the whole archive")
    if ".." in parts or not (dest / name).resolve().is_relative_to(dest.resolve()):
        raise DownloadError(f"archive member '{name}' points outside the target folder; refusing the whole archive")
