"""Draws docs/images/spectrogram.png: a held-out song's first 2 s, then what a model plays on
from it. The figure in the README was made from a run trained with

    noizenet train --data embedded --preset mulaw --max-time 6:00 --threads 1 --out RUN

(validation 4.13 bits/sample when the time limit stopped it) and then

    PYTHONPATH=src python docs/images/make_spectrogram.py RUN docs/images/spectrogram.png
"""

from __future__ import annotations

import sys


def main(run_dir: str, out: str) -> None:
    import librosa
    import librosa.display
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from PIL import Image

    import noizenet
    from noizenet.run import Run

    run = Run.open(run_dir)
    song = run.info.tracks("val")[0]["path"]
    take = noizenet.generate(run, seed=f"song:{song}", seed_seconds=2, seconds=6, write=False)[0]
    y = np.concatenate([take.seed_audio, take.audio])
    db = librosa.amplitude_to_db(np.abs(librosa.stft(y, n_fft=1024, hop_length=256)), ref=np.max)
    fig, ax = plt.subplots(figsize=(8, 2.4), dpi=90)
    librosa.display.specshow(
        db, sr=run.sr, hop_length=256, x_axis="time", y_axis="log", ax=ax, cmap="magma", vmin=-80
    )
    start = take.seed_audio.size / run.sr
    ax.axvline(start, color="white", lw=1.5, ls="--")
    ax.text(0.1, 5000, "seed: a held-out song", color="white", fontsize=9)
    ax.text(start + 0.1, 5000, "generated", color="white", fontsize=9)
    ax.set(xlabel="time (s)", ylabel="Hz")
    fig.tight_layout()
    fig.savefig(out)
    Image.open(out).convert("RGB").quantize(128).save(out, optimize=True)  # a small PNG


if __name__ == "__main__":
    main(*sys.argv[1:3])
