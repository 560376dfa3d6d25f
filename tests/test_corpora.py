"""Corpus readers on tiny generated corpora in each real layout (plus junk), and real RAVDESS."""

from collections import Counter
from pathlib import Path

import pytest

from audio_fixtures import write_tone
from ser_keras.corpora import read_corpus
from ser_keras.corpora.base import MANIFEST_COLUMNS, find_duplicates
from ser_keras.datasets import scan_dataset
from ser_keras.errors import ConfigError, DataError
from ser_keras.labels import class_names, merge_labels, NAMED_MERGES


def _audio(root, *names):
    for name in names:
        write_tone(Path(root) / name, seconds=0.05)


def _junk(root):
    """What real copies carry besides audio: Finder files, readmes, a stray wav with a bad name."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / ".DS_Store").write_bytes(b"\0\1junk")
    (root / "README.txt").write_text("about this corpus\n")
    write_tone(root / "notes.wav", seconds=0.05)


def _skipped_names(scan):
    return {Path(path).name: reason for path, reason in scan.skipped}


def _by_name(scan):
    return {Path(p).name: row for p, row in zip(scan.manifest["path"], scan.manifest.to_dict("records"))}


def _check_common(scan, corpus):
    manifest = scan.manifest
    assert list(manifest.columns[:4]) == MANIFEST_COLUMNS
    assert (manifest["corpus"] == corpus).all()
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in manifest["path"])
    assert manifest["speaker"].map(type).eq(str).all()


# --- RAVDESS ----------------------------------------------------------------------------------

@pytest.fixture
def ravdess_dir(tmp_path):
    root = tmp_path / "ravdess"
    _audio(root,
           "Actor_01/03-01-01-01-01-01-01.wav",    # neutral, male
           "Actor_01/03-01-02-02-01-01-01.flac",   # calm strong, flac
           "Actor_02/03-01-05-01-02-02-02.WAV",    # angry, female, upper-case suffix
           "Actor_02/03-02-03-01-01-01-02.wav",    # song
           "Actor_02/01-01-03-01-01-01-02.wav",    # audio-video modality
           "Actor_02/03-01-09-01-01-01-02.wav")    # emotion code out of range
    _junk(root)
    return root


def test_ravdess_speech_only_by_default(ravdess_dir):
    scan = read_corpus("ravdess", ravdess_dir)
    _check_common(scan, "ravdess")
    rows = _by_name(scan)
    assert set(rows) == {"03-01-01-01-01-01-01.wav", "03-01-02-02-01-01-01.flac", "03-01-05-01-02-02-02.WAV"}
    calm = rows["03-01-02-02-01-01-01.flac"]
    assert (calm["label"], calm["speaker"], calm["gender"], calm["intensity"]) == ("calm", "Actor_01", "male", "strong")
    angry = rows["03-01-05-01-02-02-02.WAV"]
    assert (angry["label"], angry["speaker"], angry["gender"]) == ("angry", "Actor_02", "female")
    assert (angry["statement"], angry["repetition"], angry["vocal_channel"]) == ("02", "02", "speech")
    skipped = _skipped_names(scan)
    assert set(skipped) == {"01-01-03-01-01-01-02.wav", "03-01-09-01-01-01-02.wav", "notes.wav"}
    assert "modality 01" in skipped["01-01-03-01-01-01-02.wav"]
    assert scan.notes == ["left out 1 song files (vocal_channel='speech'; --set data.vocal_channel=song or all to use them)"]


def test_ravdess_vocal_channel_option(ravdess_dir):
    song = read_corpus("ravdess", ravdess_dir, vocal_channel="song")
    assert song.manifest[["label", "vocal_channel"]].values.tolist() == [["happy", "song"]]
    assert "song recordings: 6 classes (no disgust, surprised)" in song.notes
    assert len(read_corpus("ravdess", ravdess_dir, vocal_channel="all").manifest) == 4


def _song_folder(root):
    """Song files in the real release's naming (03-02-EE-...): 6 emotions, 2 actors; plus a
    song file claiming disgust, which the song release does not have."""
    names = [f"Actor_{a:02d}/03-02-{e}-01-01-01-{a:02d}.wav" for a in (1, 2) for e in ("01", "02", "03", "04", "05", "06")]
    _audio(root, *names, "Actor_01/03-02-07-01-01-01-01.wav")
    return root


def test_scan_dataset_vocal_channel(tmp_path):
    root = _song_folder(tmp_path / "ravdess")
    _audio(root, "Actor_01/03-01-08-01-01-01-01.wav", "Actor_02/03-01-07-02-01-01-02.wav")  # two speech files
    song = scan_dataset("ravdess", root, vocal_channel="song")
    assert len(song.manifest) == 12 and set(song.manifest["vocal_channel"]) == {"song"}
    assert class_names(song.manifest["label"]) == ["neutral", "calm", "happy", "sad", "angry", "fearful"]
    assert "song recordings: 6 classes (no disgust, surprised)" in song.notes
    assert "does not exist in RAVDESS song" in _skipped_names(song)["03-02-07-01-01-01-01.wav"]
    both = scan_dataset("ravdess", root, vocal_channel="all")
    assert Counter(both.manifest["vocal_channel"]) == {"song": 12, "speech": 2}
    assert len(class_names(both.manifest["label"])) == 8
    default = scan_dataset("ravdess", root)
    assert list(default.manifest["vocal_channel"]) == ["speech", "speech"]
    assert default.notes[0].startswith("left out 12 song files")


def test_song_only_folder_says_how_to_use_it(tmp_path):
    root = _song_folder(tmp_path / "ravdess")
    with pytest.raises(DataError) as error:
        scan_dataset("ravdess", root)
    message = str(error.value)
    assert "no speech recordings" in message and "ignored 12 song files" in message
    assert "--set data.vocal_channel=song" in message and "\n" not in message


def test_vocal_channel_errors(tmp_path):
    root = _song_folder(tmp_path / "ravdess")
    with pytest.raises(ConfigError, match="^data.vocal_channel must be one of speech, song, all, not 'songs'$"):
        scan_dataset("ravdess", root, vocal_channel="songs")
    for dataset in ("emodb", "synthetic"):
        with pytest.raises(ConfigError, match="^data.vocal_channel applies to ravdess only$"):
            scan_dataset(dataset, root, vocal_channel="speech")
    with pytest.raises(ConfigError, match="vocal_channel"):
        read_corpus("ravdess", ravdess_dir, vocal_channel="whisper")


# --- IEMOCAP ----------------------------------------------------------------------------------

IEMOCAP_SES01 = """% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]

[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]
C-E2:\tNeutral;\t()
A-E1:\tval 3; act 2; dom  2;\t()

[10.0100 - 11.3925]\tSes01F_impro01_M001\texc\t[3.5000, 3.5000, 3.0000]
[12.0000 - 13.5000]\tSes01F_impro01_F002\tfru\t[2.0000, 3.5000, 3.5000]
[14.0000 - 15.5000]\tSes01F_impro01_M003\tang\t[1.5000, 4.0000, 4.0000]
[garbage line]
"""
IEMOCAP_SES02 = """[1.0 - 2.0]\tSes02M_script01_1_F000\tsad\t[2.0, 2.0, 2.0]
[3.0 - 4.0]\tSes02M_script01_1_M001\thap\t[4.0, 3.0, 3.0]
[5.0 - 6.0]\tSes02M_script01_1_M002\txxx\t[3.0, 3.0, 3.0]
"""


@pytest.fixture
def iemocap_dir(tmp_path):
    root = tmp_path / "IEMOCAP_full_release"
    for session, dialog, text in [("Session1", "Ses01F_impro01", IEMOCAP_SES01),
                                  ("Session2", "Ses02M_script01_1", IEMOCAP_SES02)]:
        evaluation = root / session / "dialog" / "EmoEvaluation"
        (evaluation / "Categorical").mkdir(parents=True)
        (evaluation / f"{dialog}.txt").write_text(text)
        (evaluation / f"._{dialog}.txt").write_bytes(b"\0\5AppleDouble")  # macOS resource fork
        (evaluation / "Categorical" / f"{dialog}_e1_cat.txt").write_text("[1.0 - 2.0]\tnot\tthe\tformat\n")
    wav = root / "Session1" / "sentences" / "wav" / "Ses01F_impro01"
    _audio(wav, "Ses01F_impro01_F000.wav", "Ses01F_impro01_M001.wav", "Ses01F_impro01_F002.wav")
    (wav / ".DS_Store").write_bytes(b"x")
    _audio(root / "Session2" / "sentences" / "wav" / "Ses02M_script01_1",
           "Ses02M_script01_1_F000.wav", "Ses02M_script01_1_M001.wav", "Ses02M_script01_1_M002.wav")
    return root


def test_iemocap_four_classes_speakers_and_sessions(iemocap_dir):
    for data_dir in (iemocap_dir, iemocap_dir.parent):  # release folder, or the folder around it
        scan = read_corpus("iemocap", data_dir)
        _check_common(scan, "iemocap")
        rows = {Path(p).stem: r for p, r in zip(scan.manifest["path"], scan.manifest.to_dict("records"))}
        assert {k: (r["label"], r["speaker"], r["session"]) for k, r in rows.items()} == {
            "Ses01F_impro01_F000": ("neutral", "Ses01F", "Session1"),
            "Ses01F_impro01_M001": ("happy", "Ses01M", "Session1"),   # exc merged into happy
            "Ses02M_script01_1_F000": ("sad", "Ses02F", "Session2"),
            "Ses02M_script01_1_M001": ("happy", "Ses02M", "Session2"),
        }
        assert rows["Ses01F_impro01_M001"]["original_label"] == "exc"
        assert rows["Ses01F_impro01_F000"]["start"] == pytest.approx(6.2901)
        assert scan.notes == ["dropped 2 utterances labelled fru (1), xxx (1)"]
        reasons = sorted(reason for _, reason in scan.skipped)
        assert reasons == ["audio missing", "malformed evaluation line"]
        assert any(path.endswith("Ses01F_impro01_M003.wav") for path, _ in scan.skipped)


# --- Emo-DB, SAVEE, CREMA-D, TESS -------------------------------------------------------------

def test_emodb(tmp_path):
    root = tmp_path / "emodb"
    _audio(root / "wav", "03a01Fa.wav", "08b02Wb.wav", "16a05Lc.wav", "11b10Ad.wav", "12a02Ea.wav",
           "13a04Ta.wav", "14a07Na.wav", "01a01Fa.wav", "03a01Xa.wav")
    _junk(root)
    (root / "lablaut").mkdir()
    (root / "lablaut" / "03a01Fa.lab").write_text("labels, not audio")
    scan = read_corpus("emodb", root)
    _check_common(scan, "emodb")
    rows = _by_name(scan)
    assert {k: (r["label"], r["speaker"], r["text"]) for k, r in rows.items()} == {
        "03a01Fa.wav": ("happy", "03", "a01"), "08b02Wb.wav": ("angry", "08", "b02"),
        "16a05Lc.wav": ("boredom", "16", "a05"), "11b10Ad.wav": ("fearful", "11", "b10"),
        "12a02Ea.wav": ("disgust", "12", "a02"), "13a04Ta.wav": ("sad", "13", "a04"),
        "14a07Na.wav": ("neutral", "14", "a07"),
    }
    skipped = _skipped_names(scan)
    assert set(skipped) == {"01a01Fa.wav", "03a01Xa.wav", "notes.wav"}
    assert "speaker 01" in skipped["01a01Fa.wav"]
    # The wav files may also sit directly in the data directory.
    assert len(read_corpus("emodb", root / "wav").manifest) == 7


def test_savee_nested_and_flat(tmp_path):
    root = tmp_path / "savee"
    _audio(root / "AudioData", "DC/a01.wav", "JE/sa02.wav", "JK/su15.wav", "KL/n30.wav", "DC/d03.wav",
           "JE/f04.wav", "XX/a01.wav", "DC/zz01.wav")
    _audio(root, "KL_h05.wav", "jk_Sa11.wav")
    (root / "AudioData" / "DC" / "info.txt").write_text("speaker DC")
    _junk(root)
    scan = read_corpus("savee", root)
    _check_common(scan, "savee")
    rows = {str(Path(p).relative_to(root)): (r["label"], r["speaker"], r["sentence"])
            for p, r in zip(scan.manifest["path"], scan.manifest.to_dict("records"))}
    assert rows == {
        "AudioData/DC/a01.wav": ("angry", "DC", "01"), "AudioData/DC/d03.wav": ("disgust", "DC", "03"),
        "AudioData/JE/f04.wav": ("fearful", "JE", "04"), "AudioData/JE/sa02.wav": ("sad", "JE", "02"),
        "AudioData/JK/su15.wav": ("surprised", "JK", "15"), "AudioData/KL/n30.wav": ("neutral", "KL", "30"),
        "KL_h05.wav": ("happy", "KL", "05"), "jk_Sa11.wav": ("sad", "JK", "11"),
    }
    assert sorted(_skipped_names(scan)) == ["a01.wav", "notes.wav", "zz01.wav"]


def test_cremad(tmp_path):
    root = tmp_path / "cremad"
    _audio(root / "AudioWAV", "1001_DFA_ANG_XX.wav", "1002_IEO_HAP_HI.wav", "1091_TIE_NEU_XX.wav",
           "1003_IEO_SAD_LO.wav", "1004_IWW_FEA_XX.wav", "1005_MTI_DIS_XX.wav",
           "1001_DFA_XYZ_XX.wav", "1001_DFA_ANG_QQ.wav")
    _junk(root)
    scan = read_corpus("cremad", root)
    _check_common(scan, "cremad")
    rows = _by_name(scan)
    assert rows["1002_IEO_HAP_HI.wav"]["label"] == "happy"
    assert (rows["1001_DFA_ANG_XX.wav"]["speaker"], rows["1001_DFA_ANG_XX.wav"]["sentence"],
            rows["1001_DFA_ANG_XX.wav"]["level"]) == ("1001", "DFA", "XX")
    assert Counter(scan.manifest["label"]) == Counter(["angry", "happy", "neutral", "sad", "fearful", "disgust"])
    assert set(_skipped_names(scan)) == {"1001_DFA_XYZ_XX.wav", "1001_DFA_ANG_QQ.wav", "notes.wav"}
    assert len(read_corpus("cremad", root / "AudioWAV").manifest) == 6


def test_tess_tolerates_case_and_spelling(tmp_path):
    root = tmp_path / "tess"
    _audio(root,
           "OAF_angry/OAF_back_angry.wav",
           "YAF_pleasant_surprised/YAF_bean_ps.wav",
           "OAF_Pleasant_surprise/OAF_chalk_pleasant_surprise.wav",
           "yaf_fear/yaf_dog_fear.wav",
           "YAF_Fear/YAF_kite_Fear.WAV",
           "OAF_neutral/OAF_back_neutral.wav",
           "YAF_disgust/YAF_bath_disgust.wav",
           "OAF_Sad/OAF_bite_sad.wav",
           "YAF_happy/YAF_lot_happy.wav",
           "OAF_neutral/OA_bite_neutral.wav",  # real release: clipped prefix, speaker from the folder
           "misc/XYZ_back_angry.wav",          # unknown speaker, in file and folder
           "OAF_angry/OAF_back_bliss.wav")     # unknown emotion
    _junk(root)
    scan = read_corpus("tess", root)
    _check_common(scan, "tess")
    rows = {k: (r["label"], r["speaker"], r["word"]) for k, r in _by_name(scan).items()}
    assert rows == {
        "OAF_back_angry.wav": ("angry", "OAF", "back"), "YAF_bean_ps.wav": ("surprised", "YAF", "bean"),
        "OAF_chalk_pleasant_surprise.wav": ("surprised", "OAF", "chalk"),
        "yaf_dog_fear.wav": ("fearful", "YAF", "dog"), "YAF_kite_Fear.WAV": ("fearful", "YAF", "kite"),
        "OAF_back_neutral.wav": ("neutral", "OAF", "back"), "YAF_bath_disgust.wav": ("disgust", "YAF", "bath"),
        "OAF_bite_sad.wav": ("sad", "OAF", "bite"), "YAF_lot_happy.wav": ("happy", "YAF", "lot"),
        "OA_bite_neutral.wav": ("neutral", "OAF", "bite"),
    }
    skipped = _skipped_names(scan)
    assert set(skipped) == {"XYZ_back_angry.wav", "OAF_back_bliss.wav", "notes.wav"}
    assert "unknown speaker 'XYZ'" in skipped["XYZ_back_angry.wav"]
    assert scan.notes == [("speaker taken from the folder name for 1 file(s) whose name does not start "
                           "with OAF/YAF (e.g. OA_bite_neutral.wav)")]
    assert class_names(scan.manifest["label"]) == ["neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised"]


# --- StyleTalk --------------------------------------------------------------------------------

# Real rows copied from StyleTalk's train.csv / eval.csv (context column shortened to "...").
STYLETALK_HEADER = ("diag_id,context,curr_audio_id,res_audio_id,curr_text,res_text,curr_emotion,curr_speed,"
                    "curr_volume,res_emotion,res_speed,res_volume\n")
STYLETALK_TRAIN = STYLETALK_HEADER + """\
book_269,"A : I just finished that new book ...",book_269/c_2.wav,book_269/r_2.wav,B: I'll add it to my list then.  ,"  Awesome, you're gonna have to tell me what you think when you're done!",friendly,normal,normal,cheerful,fast,normal
music_540,"A : I just got tickets ...",music_540/c_0.wav,music_540/r_0.wav,B: I'll look up some designs online tonight.  ,"  Great, take your time finding something you like, no rush.",neutral,slow,quiet,friendly,normal,normal
sport_149,"A : Hey, did you see the game ...",sport_149/c_0.wav,sport_149/r_0.wav,B: The next game is coming up; I wonder if they can bounce back after such a loss.  ,"  Well, they've had a good season so far, so I guess we'll just have to wait and see.",neutral,normal,normal,unfriendly,normal,normal
beauty_236,"A : I finally tried that new facial cream ...",beauty_236/c_0.wav,beauty_236/r_0.wav,"B: It's important to pamper yourself from time to time, isn't it?  ","  Absolutely, a little self-care goes a long way for a good mood.",neutral,normal,normal,excited,normal,normal
health_208,"A : So, after joining the gym ...",health_208/c_1.wav,health_208/r_1.wav,B: I've been considering trying yoga as a way to reduce stress.  ,"  Yoga? Oh, wow, that's super energetic! Sounds like you'll have a blast!",cheerful,fast,loud,excited,fast,loud
book_269,MADE-UP ROW (not in StyleTalk): repeats book_269's audio; the current turn's label conflicts,book_269/c_2.wav,book_269/r_2.wav,x,y,sad,normal,normal,cheerful,fast,normal
"""
STYLETALK_EVAL = STYLETALK_HEADER + """\
weather_510,"A : Isn't it just the most gorgeous day out? ...",weather_510/c_2.wav,weather_510/r_2.wav,B: It might rain later though.  ,"  Well, let's hope it holds off until the evening, fingers crossed!",friendly,normal,normal,hopeful,normal,normal
work_199,"A : Hey, did you hear back about that promotion yet? ...",work_199/c_2.wav,work_199/r_2.wav,B: I just hope the decision comes through soon.  ,"  Hey, no matter what happens, we'll figure it out together, okay?",sad,slow,quiet,neutral,slow,quiet
"""
STYLETALK_AUDIO = ["book_269/c_2.wav", "book_269/r_2.wav", "music_540/c_0.wav", "music_540/r_0.wav",
                   "sport_149/r_0.wav",  # sport_149/c_0.wav is missing on purpose
                   "beauty_236/c_0.wav", "beauty_236/r_0.wav", "health_208/c_1.wav", "health_208/r_1.wav",
                   "weather_510/c_2.wav", "weather_510/r_2.wav", "work_199/c_2.wav", "work_199/r_2.wav"]


def _styletalk(root, audio_root):
    root.mkdir(parents=True, exist_ok=True)
    (root / "train.csv").write_text(STYLETALK_TRAIN)
    (root / "eval.csv").write_text(STYLETALK_EVAL)
    _audio(audio_root, *STYLETALK_AUDIO)
    return root


def test_styletalk_two_utterances_per_row(tmp_path):
    root = _styletalk(tmp_path / "styletalk", tmp_path / "styletalk" / "audio")
    scan = read_corpus("styletalk", root)
    _check_common(scan, "styletalk")
    m = scan.manifest
    # 16 annotated turns - 1 hopeful - 2 repeated paths - 1 missing audio
    assert len(m) == 12
    row = m.set_index(m["path"].map(lambda p: str(Path(p).relative_to(root / "audio")))).to_dict("index")
    assert (row["book_269/c_2.wav"]["label"], row["book_269/c_2.wav"]["turn"]) == ("friendly", "current")
    assert row["book_269/r_2.wav"]["text"].startswith("Awesome, you're gonna")
    assert [row["beauty_236/r_0.wav"]["label"], row["health_208/r_1.wav"]["label"]] == ["cheerful", "cheerful"]
    assert (row["health_208/c_1.wav"]["speed"], row["health_208/c_1.wav"]["volume"]) == ("fast", "loud")
    assert (row["work_199/c_2.wav"]["split"], row["work_199/c_2.wav"]["speaker"]) == ("test", "work_199")
    assert (row["music_540/c_0.wav"]["split"], row["music_540/c_0.wav"]["volume"]) == ("train", "quiet")
    assert set(m["label"]) == {"cheerful", "friendly", "neutral", "sad", "unfriendly"}
    assert Counter(m["split"]) == {"train": 9, "test": 3}
    assert scan.notes == ["dropped 1 utterances labelled hopeful (1)",
                          "2 annotations repeat an earlier audio path; kept the first (1 with conflicting labels or split)"]
    assert [(Path(p).parent.name + "/" + Path(p).name, r) for p, r in scan.skipped] == [("sport_149/c_0.wav", "audio missing")]


def test_styletalk_audio_root_choices(tmp_path):
    annotations = _styletalk(tmp_path / "annotations", tmp_path / "elsewhere")
    assert len(read_corpus("styletalk", annotations, audio_dir=tmp_path / "elsewhere").manifest) == 12
    beside = _styletalk(tmp_path / "beside", tmp_path / "beside")  # audio folders next to the CSVs
    assert len(read_corpus("styletalk", beside).manifest) == 12
    with pytest.raises(DataError, match="none of the 13 annotated recordings.*audio_dir"):
        read_corpus("styletalk", annotations)  # no audio under annotations/ or annotations/audio


def test_styletalk_without_csvs(tmp_path):
    _junk(tmp_path / "st")
    with pytest.raises(DataError, match="train.csv or eval.csv"):
        read_corpus("styletalk", tmp_path / "st")


# --- csv --------------------------------------------------------------------------------------

def test_csv_manifest(tmp_path):
    root = tmp_path / "custom"
    _audio(root, "clips/a.wav", "clips/b.flac", "clips/d.wav")
    absolute = write_tone(tmp_path / "other" / "c.wav", seconds=0.05)
    (root / "manifest.csv").write_text(
        "path,label,speaker,split,note\n"
        "clips/a.wav,Anger,s1,train,first\n"
        "clips/b.flac,ps,s2,validation,\n"
        f"{absolute},Excited,,test,abs\n"
        "clips/missing.wav,sad,s1,train,\n"
        "clips/d.wav,sad,s1,holdout,\n")
    for data_dir in (root, root / "manifest.csv"):
        scan = read_corpus("csv", data_dir)
        _check_common(scan, "csv")
        assert scan.manifest[["label", "speaker", "split", "note"]].values.tolist() == [
            ["angry", "s1", "train", "first"], ["surprised", "s2", "val", ""], ["excited", "unknown", "test", "abs"]]
        skipped = _skipped_names(scan)
        assert skipped == {"missing.wav": "audio missing", "d.wav": "unknown split 'holdout' (use train, val or test)"}


def test_csv_errors(tmp_path):
    write_tone(tmp_path / "a.wav", seconds=0.05)
    (tmp_path / "no_label.csv").write_text("path,emotion\na.wav,sad\n")
    with pytest.raises(DataError, match="lacks column.*label"):
        read_corpus("csv", tmp_path / "no_label.csv")
    with pytest.raises(DataError, match="no manifest.csv"):
        read_corpus("csv", tmp_path)
    (tmp_path / "gone.csv").write_text("path,label\nmissing.wav,sad\n")
    with pytest.raises(DataError, match="no recognisable"):
        read_corpus("csv", tmp_path / "gone.csv")


# --- errors shared by every reader ------------------------------------------------------------

FILE_NAME_READERS = ["ravdess", "iemocap", "emodb", "tess", "savee", "cremad"]


@pytest.mark.parametrize("corpus", FILE_NAME_READERS + ["styletalk", "csv"])
def test_missing_or_empty_folder(tmp_path, corpus):
    with pytest.raises(DataError, match="does not exist"):
        read_corpus(corpus, tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="is empty"):
        read_corpus(corpus, tmp_path / "empty")


@pytest.mark.parametrize("corpus", FILE_NAME_READERS)
def test_folder_without_recognisable_files(tmp_path, corpus):
    _junk(tmp_path)
    with pytest.raises(DataError, match=f"^{corpus}: no recognisable") as error:
        read_corpus(corpus, tmp_path)
    assert "\n" not in str(error.value)


# --- duplicates and real data -----------------------------------------------------------------

def test_find_duplicates(tmp_path):
    a = write_tone(tmp_path / "a.wav", seconds=0.05, seed=1)
    b = write_tone(tmp_path / "sub" / "b.wav", seconds=0.05, seed=1)   # byte-identical to a
    c = write_tone(tmp_path / "c.wav", seconds=0.05, seed=2)           # same size, other bytes
    d = write_tone(tmp_path / "d.wav", seconds=0.07, seed=1)           # other size
    assert find_duplicates([d, c, b, a]) == [[str(a), str(b)]]
    assert find_duplicates([a, c, d]) == []


def test_real_ravdess(shared_ravdess):
    scan = read_corpus("ravdess", shared_ravdess)
    m = scan.manifest
    assert scan.notes == []  # the shared copy is speech only
    assert len(scan_dataset("ravdess", shared_ravdess, vocal_channel="all").manifest) == 1440
    assert (len(m), m["speaker"].nunique(), scan.skipped) == (1440, 24, [])
    assert class_names(m["label"]) == ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
    assert Counter(m["gender"]) == {"male": 720, "female": 720}
    merged = merge_labels(m, NAMED_MERGES["calm_to_neutral"])
    assert len(class_names(merged["label"])) == 7
    assert (merged["label"] == "neutral").sum() == 96 + 192
    duplicates = find_duplicates(m["path"])
    assert [[Path(p).stem for p in group] for group in duplicates] == [
        ["03-01-03-01-02-01-07", "03-01-03-01-02-02-07"]]
    assert all(Path(p).parent.name == "Actor_07" for p in duplicates[0])
