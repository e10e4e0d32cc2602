"""``noizenet bench``: training and generation speed, beside the paper's algorithms, in one run.

Every figure is the median of ``repeats`` timed repetitions after a warm-up, measured in the same
process on the same machine, so the ratios are meaningful even where absolute times are noisy.

Baselines, implemented here as the paper's code ran them:

- *sliding-window training*: for every sample, the model runs over a window ending at it (state
  carried between windows), the loss is taken on the last output, and the optimizer steps;
- *window re-ingest generation*: for every new sample, the model re-reads the last 735 samples;
- *per-sample PyTorch loop*: ``model.step`` once per sample (what a straightforward port does).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from noizenet.config import DEFAULT_PRESET

SR = 22050
PAPER_WINDOW = 735  # samples the authors' code re-ingested per generated sample


@dataclass
class Row:
    figure: str
    samples_per_s: float
    baseline: str = ""
    baseline_samples_per_s: float | None = None
    floor: float | None = None  # the floor and goal, in the row's unit
    goal: float | None = None
    unit: str = "samples/s"  # or "x real time"

    @property
    def value(self) -> float:
        return self.samples_per_s / SR if self.unit == "x real time" else self.samples_per_s

    @property
    def ratio(self) -> float | None:
        if not self.baseline_samples_per_s:
            return None
        return self.samples_per_s / self.baseline_samples_per_s


def median_rate(fn: Callable[[], int], *, repeats: int, warmup: int = 1) -> float:
    """Samples per second of ``fn`` (which returns how many samples it processed)."""
    for _ in range(warmup):
        fn()
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        n = fn()
        rates.append(n / (time.perf_counter() - t))
    return statistics.median(rates)


def _model(hidden: int, categorical: bool, *, dropout: float = 0.0, spec: dict | None = None):
    """A flat model of ``hidden`` units, or the model of a saved-spec dict ``spec``."""
    import torch

    from noizenet.models import build, spec_from_dict

    torch.manual_seed(0)
    levels = 256 if categorical else 0
    raw = spec or {"hidden": hidden, "dropout": dropout, "levels": levels}
    return build(spec_from_dict(raw))


def training_rate(
    hidden: int,
    categorical: bool,
    *,
    batch: int | None = None,
    chunk: int | None = None,
    repeats: int = 5,
    steps: int = 4,
    spec: dict | None = None,
) -> float:
    """Stateful truncated BPTT with the real trainer step, on synthetic data; ``batch`` and
    ``chunk`` default to ``noizenet train``'s own defaults; ``spec`` (a saved-spec dict, e.g.
    a samplernn one) replaces the flat model of ``hidden`` units."""
    from noizenet.config import TrainConfig
    from noizenet.train.streams import Streams
    from noizenet.train.trainer import Trainer

    defaults = TrainConfig()
    batch = batch or defaults.batch
    chunk = chunk or int(defaults.chunk)
    model = _model(hidden, categorical, dropout=0.5, spec=spec)
    categorical = categorical or spec is not None
    rng = np.random.default_rng(0)
    n = batch * chunk * steps + 1 + model.lookback
    track = rng.integers(0, 256, n) if categorical else rng.standard_normal(n)
    streams = Streams([track.astype(np.float32)], batch=batch, chunk=chunk, lookback=model.lookback)
    trainer = Trainer(model, streams, TrainConfig(), progress=False)
    batches = list(streams.epoch(0, seed=0))

    def run() -> int:
        for b in batches:
            trainer.train_step(b)
        return sum(b.samples for b in batches)

    return median_rate(run, repeats=repeats)


def paper_training_rate(
    hidden: int, *, window: int = PAPER_WINDOW, samples: int = 30, repeats: int = 5
) -> float:
    """The authors' algorithm: one optimizer step per sample over a sliding window."""
    import torch

    from noizenet.models.state import detach

    model = _model(hidden, False)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    x = torch.randn(1, window + samples + 1, 1)

    def run() -> int:
        state = None
        for t in range(samples):
            pred, state = model(x[:, t : t + window], state)
            loss = (pred[:, -1] - x[:, t + window]).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            state = detach(state)
        return samples

    return median_rate(run, repeats=repeats)


def generation_rate(
    hidden: int,
    categorical: bool,
    *,
    streams: int = 1,
    seconds: float = 0.5,
    repeats: int = 5,
    spec: dict | None = None,
) -> float:
    """Free-running generation with the family's kernel (numba), all streams together
    (``spec``: a saved-spec dict instead of the flat model of ``hidden`` units)."""
    from noizenet.models import kernel_of
    from noizenet.sampling import Sampling

    model = _model(hidden, categorical, spec=spec).eval()
    categorical = categorical or spec is not None
    kernel = kernel_of(model)
    n = max(int(seconds * SR), 10)
    rng = np.random.default_rng(0)
    if categorical:
        forced = rng.integers(0, 256, (streams, 10 + model.lookback))
        sampling = Sampling(uniforms=rng.random((streams, n)), level_values=np.linspace(-1, 1, 256))
    else:
        forced = rng.standard_normal((streams, 10)).astype(np.float32)
        sampling = Sampling()

    def go() -> int:
        kernel.run(forced, n, sampling)
        return streams * n

    return median_rate(go, repeats=repeats)


def torch_loop_rate(hidden: int, *, samples: int = 300, repeats: int = 5) -> float:
    """One ``model.step`` per generated sample, fed back: the plain PyTorch path."""
    import torch

    model = _model(hidden, False).eval()

    @torch.no_grad()
    def go() -> int:
        y, state = model.step(torch.zeros(1, 1))
        for _ in range(samples):
            y, state = model.step(y, state)
        return samples

    return median_rate(go, repeats=repeats)


def paper_generation_rate(
    hidden: int, *, window: int = PAPER_WINDOW, samples: int = 30, repeats: int = 5
) -> float:
    """The authors' algorithm: re-run the model over the last ``window`` samples per sample."""
    import torch

    model = _model(hidden, False).eval()

    @torch.no_grad()
    def go() -> int:
        buf = torch.randn(1, window, 1)
        for _ in range(samples):
            pred, _ = model(buf)
            buf = torch.cat([buf[:, 1:], pred[:, -1:]], dim=1)
        return samples

    return median_rate(go, repeats=repeats)


def run_bench(*, repeats: int = 5, quick: bool = False, log: Any = print) -> list[Row]:
    """Measure every row of the speed issue's table; ``quick`` shrinks the work for tests."""
    import torch

    scale = 0.1 if quick else 1.0
    rows: list[Row] = []

    def add(row: Row) -> None:
        rows.append(row)
        log(format_row(row))

    steps = 1 if quick else 4
    # ours first, on a fresh process: the baselines' many small torch calls leave it ~10% slower
    train = {
        (h, cat): training_rate(h, cat, repeats=repeats, steps=steps)
        for h, cat in ((50, False), (50, True), (512, False))
    }
    paper_train = {
        h: paper_training_rate(h, repeats=repeats, samples=max(3, int(30 * scale)))
        for h in (50, 512)
    }
    paper_gen = {
        h: paper_generation_rate(h, repeats=repeats, samples=max(3, int(30 * scale)))
        for h in (50, 512)
    }
    loop = {
        h: torch_loop_rate(h, repeats=repeats, samples=max(10, int(300 * scale))) for h in (50, 512)
    }
    add(
        Row(
            "training, hidden 50, MSE",
            train[50, False],
            "paper sliding window",
            paper_train[50],
            500e3,
            1e6,
        )
    )
    add(
        Row(
            "training, hidden 50, mu-law 256",
            train[50, True],
            "paper sliding window",
            paper_train[50],
            300e3,
            600e3,
        )
    )
    add(
        Row(
            "training, hidden 512, MSE",
            train[512, False],
            "paper sliding window",
            paper_train[512],
            16e3,
            22e3,
        )
    )
    goals = {
        (1, 50, False): (35, 50),
        (1, 50, True): (15, 22),
        (1, 512, False): (1.0, 1.5),
        (1, 512, True): (None, None),
        (64, 50, False): (60, 100),
        (64, 50, True): (30, 50),
        (64, 512, False): (2.0, 2.8),
        (64, 512, True): (1.4, 2.0),
    }
    for (streams, hidden, cat), (floor, goal) in goals.items():
        seconds = (0.5 if hidden == 50 else 0.05) * scale / (1 if streams == 1 else 8)
        rate = generation_rate(hidden, cat, streams=streams, seconds=seconds, repeats=repeats)
        head = "mu-law 256" if cat else "MSE"
        add(
            Row(
                f"generation, {streams} stream{'s' * (streams > 1)}, hidden {hidden}, {head}",
                rate,
                "paper window re-ingest",
                paper_gen[hidden],
                floor,
                goal,
                "x real time",
            )
        )
    for h in (50, 512):
        add(
            Row(
                f"generation, plain PyTorch per-sample loop, hidden {h}",
                loop[h],
                "paper window re-ingest",
                paper_gen[h],
                unit="x real time",
            )
        )
    for name in PRESET_ROWS:
        spec, batch, chunk = preset_spec(name)
        add(
            Row(
                f"training, preset {name} ({batch} x {chunk})",
                training_rate(0, True, batch=batch, chunk=chunk, repeats=repeats, steps=steps,
                              spec=spec),
                floor=60e3,
                goal=150e3,
            )
        )  # fmt: skip
        for streams, (floor, goal) in ((1, (2, 5)), (64, (10, 25))):
            seconds = 0.5 * scale / (1 if streams == 1 else 8)
            rate = generation_rate(
                0, True, streams=streams, seconds=seconds, repeats=repeats, spec=spec
            )
            add(
                Row(
                    f"generation, {streams} stream{'s' * (streams > 1)}, preset {name}",
                    rate,
                    floor=floor,
                    goal=goal,
                    unit="x real time",
                )
            )
    log(f"(torch {torch.__version__}, {torch.get_num_threads()} threads; medians of {repeats})")
    return rows


# train's default preset and the hierarchical ones, each at its own sizes (the music issue's
# goals: training 60 k / 150 k samples/s, generation 2x / 5x for one stream, 10x / 25x for 64)
PRESET_ROWS = tuple(dict.fromkeys((DEFAULT_PRESET, "samplernn", "samplernn-3t")))


def preset_spec(name: str) -> tuple[dict[str, Any], int, int]:
    """A preset's model as a saved-spec dict (256 levels, as its mu-law codec gives), and its
    batch and chunk."""
    from noizenet.codecs import make_codec
    from noizenet.config import Config
    from noizenet.models import spec_from_config

    cfg = Config().with_overrides({"preset": name})
    spec = spec_from_config(cfg.model, make_codec(cfg.codec))
    return spec.to_dict(), cfg.train.batch, int(cfg.train.chunk)


def format_row(row: Row) -> str:
    unit = row.unit
    val = f"{row.value:,.1f} {unit}" if unit == "x real time" else f"{row.value:,.0f} {unit}"
    ratio = f"{row.ratio:,.0f}x {row.baseline}" if row.ratio else ""
    target = ""
    if row.floor is not None and row.goal is not None:
        if row.value >= row.goal:
            target = f"[meets goal {row.goal:g} (floor {row.floor:g})]"
        elif row.value >= row.floor:
            target = f"[meets floor {row.floor:g}, below goal {row.goal:g}]"
        else:
            target = f"[BELOW floor {row.floor:g} (goal {row.goal:g})]"
    return f"{row.figure:<55} {val:>22}  {ratio:<36} {target}"


def rows_json(rows: list[Row]) -> list[dict[str, Any]]:
    return [asdict(r) | {"value": r.value, "ratio": r.ratio} for r in rows]
