"""``cli.py download``: resumable HTTP, checksums and safe extraction, against a local server only."""

import hashlib
import io
import subprocess
import sys
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from audio_fixtures import write_tone
from ser_keras.corpora import read_corpus
from ser_keras.corpora.download import download_corpus
from ser_keras.errors import ConfigError, DownloadError

ROOT = Path(__file__).resolve().parents[1]
NAMES = ("03-01-01-01-01-01-01", "03-01-03-01-01-01-01", "03-01-05-01-01-01-01")


class Served:
    """What the server hands out (path -> bytes) and what it saw, shared with the handler."""

    def __init__(self):
        self.files, self.ranges, self.requests = {}, [], 0
        self.honour_range = True
        self.cut_after = None  # send only this many body bytes, then drop the connection


class Handler(BaseHTTPRequestHandler):
    served: Served

    def do_GET(self):  # noqa: N802 (http.server's naming)
        served = self.served
        served.requests += 1
        data = served.files.get(self.path.split("?")[0])
        if data is None:
            self.send_error(404)
            return
        start, header = 0, self.headers.get("Range")
        served.ranges.append(header)
        if header and served.honour_range:
            start = int(header.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body if served.cut_after is None else body[:served.cut_after])

    def log_message(self, *args):
        pass


@pytest.fixture
def server(monkeypatch):
    """A Range-aware HTTP server on 127.0.0.1 in a thread; yields (Served, base URL)."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(var, raising=False)  # never send the loopback requests to a proxy
    monkeypatch.setenv("no_proxy", "*")
    served = Served()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), type("H", (Handler,), {"served": served}))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def wavs(tmp_path_factory):
    """Three tiny RAVDESS-named WAV files: {archive member name: bytes}."""
    folder = tmp_path_factory.mktemp("wavs")
    return {f"Actor_01/{n}.wav": write_tone(folder / f"{n}.wav", seconds=0.05, freq=200 + 50 * i).read_bytes()
            for i, n in enumerate(NAMES)}


def make_zip(members, symlinks=()):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name), data)  # ZipInfo keeps '/abs' and '../' as given
        for name, target in symlinks:
            info = zipfile.ZipInfo(name)
            info.create_system, info.external_attr = 3, (0o120777 << 16)  # S_IFLNK, as `zip -y` writes it
            archive.writestr(info, target)
    return buffer.getvalue()


def make_tar(members, symlinks=()):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name, target in symlinks:
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            archive.addfile(info)
    return buffer.getvalue()


def sha(data):
    return hashlib.sha256(data).hexdigest()


def assert_nothing_extracted(to):
    """Neither the corpus folder nor a leftover extraction folder nor the bad archive is there."""
    assert not to.exists() or [p.name for p in to.iterdir()] == []


def test_good_zip_downloads_verifies_and_reads(server, wavs, tmp_path, capsys):
    served, base = server
    served.files["/corpus.zip"] = data = make_zip(wavs)
    root = download_corpus("ravdess", tmp_path / "data", url=f"{base}/corpus.zip", sha256=sha(data).upper(),
                           progress=False)
    assert root == (tmp_path / "data" / "ravdess").resolve()
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["ravdess"]  # no archive, .part or temp
    scan = read_corpus("ravdess", root)
    assert len(scan.manifest) == 3 and set(scan.manifest["label"]) == {"neutral", "happy", "angry"}
    assert f"sha256 verified: {sha(data)}" in capsys.readouterr().out
    # A second run finds the corpus and does not touch the network.
    assert download_corpus("ravdess", tmp_path / "data", url=f"{base}/corpus.zip", progress=False) == root
    assert served.requests == 1


def test_tar_gz_without_checksum_prints_the_computed_one(server, wavs, tmp_path, capsys):
    served, base = server
    served.files["/corpus.tar.gz"] = data = make_tar(wavs)
    root = download_corpus("ravdess", tmp_path, url=f"{base}/corpus.tar.gz", progress=False)
    assert len(read_corpus("ravdess", root).manifest) == 3
    out = capsys.readouterr().out
    assert "no checksum known" in out and sha(data) in out and "--sha256" in out


@pytest.mark.parametrize("honour_range", [True, False])
def test_resume_from_a_partial_download(server, wavs, tmp_path, honour_range):
    served, base = server
    served.honour_range = honour_range
    served.files["/corpus.zip"] = data = make_zip(wavs)
    half = len(data) // 2
    (tmp_path / "ravdess-corpus.zip.part").write_bytes(data[:half])
    root = download_corpus("ravdess", tmp_path, url=f"{base}/corpus.zip", sha256=sha(data), progress=False)
    assert served.ranges == [f"bytes={half}-"]  # asked for the rest only
    assert len(read_corpus("ravdess", root).manifest) == 3  # 206 appended, or 200 restarted


def test_a_part_that_is_no_prefix_is_restarted(server, wavs, tmp_path):
    served, base = server
    served.files["/corpus.zip"] = data = make_zip(wavs)
    (tmp_path / "ravdess-corpus.zip.part").write_bytes(b"\0" * (len(data) + 10))  # e.g. from an older release
    root = download_corpus("ravdess", tmp_path, url=f"{base}/corpus.zip", sha256=sha(data), progress=False)
    assert served.ranges == [f"bytes={len(data) + 10}-", None]  # 416, then the whole file
    assert len(read_corpus("ravdess", root).manifest) == 3


def test_dropped_connection_keeps_the_part_and_resumes(server, wavs, tmp_path):
    served, base = server
    served.files["/corpus.zip"] = data = make_zip(wavs)
    served.cut_after = 1000
    with pytest.raises(DownloadError, match="stopped at 1000 of .* run the same command again to resume"):
        download_corpus("ravdess", tmp_path, url=f"{base}/corpus.zip", sha256=sha(data), progress=False)
    assert (tmp_path / "ravdess-corpus.zip.part").stat().st_size == 1000
    served.cut_after = None
    root = download_corpus("ravdess", tmp_path, url=f"{base}/corpus.zip", sha256=sha(data), progress=False)
    assert served.ranges == [None, "bytes=1000-"] and len(read_corpus("ravdess", root).manifest) == 3


@pytest.mark.parametrize("make", [make_zip, make_tar])
def test_truncated_archive_is_refused_and_nothing_extracted(server, wavs, tmp_path, make):
    served, base = server
    served.files["/corpus"] = make(wavs)[:-300]
    with pytest.raises(DownloadError, match="truncated or corrupt"):
        download_corpus("ravdess", tmp_path / "data", url=f"{base}/corpus", progress=False)
    assert_nothing_extracted(tmp_path / "data")


def test_wrong_sha256_is_refused_and_the_file_deleted(server, wavs, tmp_path):
    served, base = server
    served.files["/corpus.zip"] = make_zip(wavs)
    with pytest.raises(DownloadError, match="SHA256 mismatch .* expected 0{64}"):
        download_corpus("ravdess", tmp_path / "data", url=f"{base}/corpus.zip", sha256="0" * 64, progress=False)
    assert_nothing_extracted(tmp_path / "data")


@pytest.mark.parametrize("make", [make_zip, make_tar])
@pytest.mark.parametrize("bad, expected", [
    ({"members": {"../evil.txt": b"x"}}, "outside the target"),
    ({"members": {"Actor_01/../../evil.txt": b"x"}}, "outside the target"),
    ({"members": {"/tmp/ser_keras_evil.txt": b"x"}}, "absolute path"),
    ({"symlinks": [("Actor_01/link.wav", "../../evil.txt")]}, "is a link"),
])
def test_unsafe_archive_is_refused_as_a_whole(server, wavs, tmp_path, make, bad, expected):
    served, base = server
    # Good members come first: the refusal must happen before any of them is written.
    served.files["/corpus"] = make({**wavs, **bad.get("members", {})}, bad.get("symlinks", ()))
    to = tmp_path / "a" / "b"
    with pytest.raises(DownloadError, match=expected):
        download_corpus("ravdess", to, url=f"{base}/corpus", progress=False)
    assert_nothing_extracted(to)
    assert not any(p.name == "evil.txt" for p in tmp_path.rglob("*"))
    assert not Path("/tmp/ser_keras_evil.txt").exists()


def test_cli_wrong_sha256_is_one_error_line(server, wavs, tmp_path):
    served, base = server
    served.files["/corpus.zip"] = make_zip(wavs)
    env = {"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3", "no_proxy": "*"}
    result = subprocess.run([sys.executable, "cli.py", "download", "ravdess", "--to", str(tmp_path / "data"),
                             "--url", f"{base}/corpus.zip", "--sha256", "f" * 64],
                            capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)
    assert result.returncode != 0
    # The progress bar (desc "download") may share stderr; apart from it there is one error line.
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("download:")]
    assert len(lines) == 1 and lines[0].startswith("error: SHA256 mismatch"), result.stderr
    assert "Traceback" not in result.stderr
    assert_nothing_extracted(tmp_path / "data")


def test_cli_prints_the_data_dir(server, wavs, tmp_path):
    served, base = server
    served.files["/corpus.zip"] = data = make_zip(wavs)
    env = {"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3", "no_proxy": "*"}
    result = subprocess.run([sys.executable, "cli.py", "download", "ravdess", "--to", str(tmp_path),
                             "--url", f"{base}/corpus.zip", "--sha256", sha(data)],
                            capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"data dir: {tmp_path / 'ravdess'}" in result.stdout
    assert f"cli.py info --dataset ravdess --data-dir {tmp_path / 'ravdess'}" in result.stdout


@pytest.mark.parametrize("args, fragment", [
    ({"sha256": "abc"}, "64 hexadecimal"),
    ({"url": "file:///etc/passwd"}, "http"),
])
def test_bad_options_fail_before_any_network(tmp_path, args, fragment):
    with pytest.raises(ConfigError, match=fragment):
        download_corpus("ravdess", tmp_path, progress=False, **args)
    assert not any(tmp_path.iterdir())


def test_the_publishers_md5_is_checked_for_the_built_in_url_only(server, wavs, tmp_path, monkeypatch, capsys):
    from ser_keras.corpora import download

    served, base = server
    served.files["/corpus.zip"] = data = make_zip(wavs)
    monkeypatch.setitem(download.SOURCES, "ravdess", download.Source(f"{base}/corpus.zip", "0" * 32, "test"))
    with pytest.raises(DownloadError, match="MD5 mismatch"):
        download_corpus("ravdess", tmp_path / "a", progress=False)
    # The same file from a mirror (--url) is not held to the built-in file's MD5.
    assert download_corpus("ravdess", tmp_path / "b", url=f"{base}/corpus.zip?mirror", progress=False).is_dir()
    md5 = hashlib.md5(data).hexdigest()
    monkeypatch.setitem(download.SOURCES, "ravdess", download.Source(f"{base}/corpus.zip", md5, "test"))
    assert download_corpus("ravdess", tmp_path / "c", progress=False).is_dir()
    assert "md5 verified" in capsys.readouterr().out
