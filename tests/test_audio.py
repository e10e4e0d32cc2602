import numpy as np
import pytest
import soundfile as sf
from conftest import write_wav

from noizenet import audio
from noizenet.errors import AudioError


def _stereo(sr, seconds=0.5, f=440.0):
    t = np.arange(int(sr * seconds)) / sr
    left = 0.5 * np.sin(2 * np.pi * f * t)
    return np.stack([left, 0.5 * left], axis=1).astype(np.float32)


@pytest.mark.parametrize(
    "fmt, ext", [("WAV", ".wav"), ("FLAC", ".flac"), ("OGG", ".ogg"), ("MP3", ".mp3")]
)
def test_decodes_stereo_44k_to_mono_22k(tmp_path, fmt, ext):
    path = write_wav(tmp_path / f"x{ext}", _stereo(44100), 44100, format=fmt)
    y = audio.load(path)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(y.size - 11025) < 1200  # MP3 adds encoder padding
    # mono mix of left and 0.5*left: peak about 0.375
    assert 0.3 < np.max(np.abs(y)) < 0.45
    spec = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spec) * 22050 / y.size - 440) < 10


def test_offset_and_duration(tmp_path):
    y0 = np.arange(22050, dtype=np.float32) / 22050 - 0.5
    path = write_wav(tmp_path / "ramp.wav", y0, subtype="FLOAT")
    y = audio.load(path, offset=0.5, duration=0.25)
    assert y.size == round(0.25 * 22050)
    assert y[0] == pytest.approx(y0[11025], abs=1e-6)


def test_write_is_16_bit_pcm_at_the_sample_rate_and_clips(tmp_path):
    path = audio.write(tmp_path / "o.wav", np.array([0.0, 0.5, 2.0, -3.0], np.float32))
    info = sf.info(str(path))
    assert (info.samplerate, info.subtype, info.channels) == (22050, "PCM_16", 1)
    data, _ = sf.read(path)
    assert data.max() <= 1.0 and data.min() >= -1.0


def test_write_refuses_nan_and_leaves_nothing(tmp_path):
    with pytest.raises(AudioError, match="non-finite"):
        audio.write(tmp_path / "bad.wav", np.array([0.0, np.nan], np.float32))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "content, fragment", [(b"", "empty file"), (b"this is not audio at all" * 10, "cannot decode")]
)
def test_bad_files_give_one_line_errors_naming_the_file(tmp_path, content, fragment):
    p = tmp_path / "broken.mp3"
    p.write_bytes(content)
    with pytest.raises(AudioError, match=fragment) as exc:
        audio.load(p)
    assert "broken.mp3" in str(exc.value) and "\n" not in str(exc.value)


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match="no such file"):
        audio.load(tmp_path / "nope.wav")
