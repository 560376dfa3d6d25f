"""audio.py: decoding of good, odd and broken files; pad / trim / segment."""

import numpy as np
import pytest
import soundfile as sf

from audio_fixtures import tone, write_tone
from ser_keras import audio
from ser_keras.errors import AudioError


def reason_of(path, sample_rate=16000):
    with pytest.raises(AudioError) as info:
        audio.load_audio(path, sample_rate)
    assert str(path) in str(info.value)  # the one-line message names the file
    return info.value.reason


def test_plain_wav_loads_as_float32_mono(tmp_path):
    path = write_tone(tmp_path / "a.wav", seconds=0.5)
    x = audio.load_audio(path, 16000)
    assert x.dtype == np.float32 and x.shape == (8000,)
    np.testing.assert_allclose(x, tone(0.5), atol=1 / 32768)


def test_zero_byte_file(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    assert reason_of(tmp_path / "empty.wav") == "empty file"


def test_missing_file(tmp_path):
    assert reason_of(tmp_path / "nope.wav") == "file not found"


def test_text_file_named_wav(tmp_path):
    (tmp_path / "notes.wav").write_text("this is a readme, not audio\n" * 20)
    assert reason_of(tmp_path / "notes.wav") == "not audio libsndfile can read"
    with pytest.raises(AudioError):
        audio.probe(tmp_path / "notes.wav")


def test_aiff_named_wav_loads(tmp_path):
    path = write_tone(tmp_path / "really_aiff.wav", seconds=0.5, fmt="AIFF")
    assert path.read_bytes()[:4] == b"FORM"
    x = audio.load_audio(path, 16000)
    np.testing.assert_allclose(x, tone(0.5), atol=1 / 32768)


def test_96k_file_is_resampled_to_the_right_length(tmp_path):
    path = write_tone(tmp_path / "hi.wav", seconds=0.5, sample_rate=96000)
    x = audio.load_audio(path, 16000)
    assert x.shape == (8000,)
    spectrum = np.abs(np.fft.rfft(x))
    assert np.argmax(spectrum) * 16000 / x.size == pytest.approx(220, abs=2)


def test_stereo_is_downmixed_by_mean(tmp_path):
    path = write_tone(tmp_path / "st.wav", seconds=0.25, channels=2)
    stereo, _ = sf.read(str(path), dtype="float32")
    x = audio.load_audio(path, 16000)
    np.testing.assert_allclose(x, stereo.mean(axis=1), atol=1e-6)
    assert audio.probe(path) == (16000, 2, 4000)


def test_truncated_wav_is_rejected_as_truncated(tmp_path):
    # libsndfile clamps the header's frame count to the data present (sf.info too), so
    # only the header itself tells that 10000 of the 16000 frames are missing.
    whole = write_tone(tmp_path / "whole.wav", seconds=1.0).read_bytes()
    (tmp_path / "cut.wav").write_bytes(whole[: 44 + 2 * 6000 + 1])
    assert sf.info(str(tmp_path / "cut.wav")).frames == 6000
    assert audio.header_frames(tmp_path / "cut.wav") == 16000
    assert reason_of(tmp_path / "cut.wav") == "truncated"
    with pytest.raises(AudioError) as info:
        audio.probe(tmp_path / "cut.wav")  # `info` sees it from the header alone
    assert info.value.reason == "truncated"
    # header only: truncated too; header itself cut short: not audio
    (tmp_path / "header.wav").write_bytes(whole[:44])
    assert reason_of(tmp_path / "header.wav") == "truncated"
    (tmp_path / "half_header.wav").write_bytes(whole[:30])
    assert reason_of(tmp_path / "half_header.wav") == "not audio libsndfile can read"


@pytest.mark.parametrize("fmt, subtype", [("WAV", "FLOAT"), ("AIFF", "PCM_16"), ("WAVEX", "PCM_24")])
def test_truncation_is_found_in_other_layouts(tmp_path, fmt, subtype):
    path = write_tone(tmp_path / "x.wav", seconds=0.5, fmt=fmt, subtype=subtype)
    whole = path.read_bytes()
    assert audio.header_frames(path) == 8000 and audio.load_audio(path, 16000).shape == (8000,)
    path.write_bytes(whole[: len(whole) // 2])
    assert reason_of(path) == "truncated"


def test_complete_files_are_not_called_truncated(tmp_path):
    # trailing chunks after the data, an odd-sized data chunk with its pad byte, and a
    # streaming header that leaves the data size unknown (0xFFFFFFFF) all load
    path = write_tone(tmp_path / "a.wav", seconds=0.25)
    path.write_bytes(path.read_bytes() + b"LIST" + (4).to_bytes(4, "little") + b"INFO")
    assert audio.load_audio(path, 16000).shape == (4000,)
    odd = tmp_path / "odd.wav"
    sf.write(str(odd), (0.3 * np.sin(np.arange(401) / 3)).astype(np.float32), 16000, subtype="PCM_U8")
    assert audio.load_audio(odd, 16000).shape == (401,)
    streamed = bytearray(write_tone(tmp_path / "s.wav", seconds=0.25).read_bytes())
    streamed[40:44] = b"\xff\xff\xff\xff"
    (tmp_path / "s.wav").write_bytes(bytes(streamed))
    assert audio.header_frames(tmp_path / "s.wav") is None
    assert audio.load_audio(tmp_path / "s.wav", 16000).shape == (4000,)
    flac = write_tone(tmp_path / "f.flac", seconds=0.25)
    assert audio.probe(flac) == (16000, 1, 4000) and audio.load_audio(flac, 16000).shape == (4000,)


def test_a_valid_file_with_no_frames_has_no_samples(tmp_path):
    sf.write(str(tmp_path / "none.wav"), np.zeros(0, np.float32), 16000)
    assert reason_of(tmp_path / "none.wav") == "no samples"


def test_silent_file(tmp_path):
    sf.write(str(tmp_path / "silent.wav"), np.zeros(8000, np.float32), 16000)
    assert reason_of(tmp_path / "silent.wav") == "silent"


def test_peak_safe_after_resampling(tmp_path):
    # A full-scale square wave overshoots after band-limiting: scaled back, not clipped.
    t = np.arange(44100) / 44100
    square = np.sign(np.sin(2 * np.pi * 441 * t)).astype(np.float32)
    sf.write(str(tmp_path / "sq.wav"), square, 44100, subtype="FLOAT")
    x = audio.load_audio(tmp_path / "sq.wav", 16000)
    assert np.max(np.abs(x)) == pytest.approx(1.0, abs=1e-6)
    assert np.sum(np.abs(x) > 0.999) < 20  # a clipper would flatten whole half-periods


def test_float_file_beyond_full_scale_is_scaled(tmp_path):
    sf.write(str(tmp_path / "hot.wav"), 2.5 * tone(0.25), 16000, subtype="FLOAT")
    x = audio.load_audio(tmp_path / "hot.wav", 16000)
    np.testing.assert_allclose(x, tone(0.25) / np.max(np.abs(tone(0.25))), atol=1e-5)


def test_pad_or_trim():
    x = np.arange(5, dtype=np.float32) + 1
    np.testing.assert_array_equal(audio.pad_or_trim(x, 3), [1, 2, 3])
    np.testing.assert_array_equal(audio.pad_or_trim(x, 7), [1, 2, 3, 4, 5, 0, 0])


def test_segment_covers_everything_and_pads_the_last():
    x = np.arange(1, 11, dtype=np.float32)
    segs = audio.segment(x, length=4, hop=3)
    np.testing.assert_array_equal(segs, [[1, 2, 3, 4], [4, 5, 6, 7], [7, 8, 9, 10]])
    segs = audio.segment(x, length=4, hop=4)
    np.testing.assert_array_equal(segs[-1], [9, 10, 0, 0])
    assert audio.segment(x[:2], length=4, hop=2).shape == (1, 4)  # short: one padded segment
    assert audio.segment_count(22400 + 1, 22400, 11200) == 2


def test_real_48k_matches_the_16k_release(shared_data):
    # The shared 16 kHz FLACs were made from these 48 kHz WAVs with soxr HQ: our decode ->
    # downmix -> resample path must reproduce them to within 2 LSB of 16-bit audio.
    originals = sorted((shared_data / "ravdess-48k-samples").glob("Actor_*/*.wav"))
    assert originals
    for wav in originals:
        flac = shared_data / "ravdess" / wav.parent.name / (wav.stem + ".flac")
        assert audio.probe(wav)[0] == 48000
        ours, theirs = audio.load_audio(wav, 16000), audio.load_audio(flac, 16000)
        assert ours.shape == theirs.shape
        np.testing.assert_allclose(ours, theirs, atol=2 / 32768)
