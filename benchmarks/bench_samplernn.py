"""Speed of the samplernn family at a few sizes, measured in one run beside the flat mu-law
LSTM 128 as a yardstick (the machine is shared: compare rows of one run as ratios): training
samples/s (forward, cross-entropy, backward and Adam on 32 x 1024 chunks, the flat LSTM on
32 x 256, plain PyTorch, 1 and 2 torch threads) and generation real-time factor at 22,050 Hz
(the numba kernels, 1 stream and 64).

    PYTHONPATH=src python benchmarks/bench_samplernn.py [--quick]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from noizenet.models import kernel_of
from noizenet.models.samplernn import SampleRNNSpec
from noizenet.models.samplernn_kernel import run
from noizenet.models.samplernn_net import SampleRNN
from noizenet.sampling import Sampling

SR = 22050
SIZES = {
    "FS 16, GRU 256, MLP 128, E 16": dict(frame_sizes=(16,), hidden=256, mlp_hidden=128),
    "FS 16, GRU 128, MLP 64, E 16": dict(frame_sizes=(16,), hidden=128, mlp_hidden=64),
    "FS 64,16, GRU 256, MLP 128, E 16": dict(frame_sizes=(64, 16), hidden=256, mlp_hidden=128),
}


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up (and numba compilation)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def training(spec: SampleRNNSpec, threads: int, repeats: int, B: int = 32, T: int = 1024) -> float:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = SampleRNN(spec)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    x = torch.randint(0, spec.levels, (B, model.lookback + T + 1, 1)).float()
    inputs, targets = x[:, :-1], x[:, model.lookback + 1 :, 0].long()
    state = model.init_state(B)

    def step() -> None:
        nonlocal state
        logits, new = model(inputs, state)
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
        state = {k: v.detach() for k, v in new.items()}

    return B * T / median_time(step, repeats)


def generation(spec: SampleRNNSpec, streams: int, seconds: float, repeats: int) -> float:
    torch.manual_seed(0)
    model = SampleRNN(spec).eval()
    weights = kernel_of(model).weights
    rng = np.random.default_rng(0)
    n = int(seconds * SR)
    forced = rng.integers(0, spec.levels, (streams, 256))
    sampling = Sampling(uniforms=rng.random((streams, n)), level_values=np.linspace(-1, 1, 256))
    elapsed = median_time(lambda: run(weights, forced, n, sampling, spec=spec), repeats)
    return streams * n / elapsed / SR


def flat_training(threads: int, repeats: int, B: int = 32, T: int = 256) -> float:
    """The yardstick: the flat mu-law LSTM 128 (embedding 32) on 32 x 256 chunks."""
    from noizenet.models import ModelSpec, NoizeNet

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = NoizeNet(ModelSpec(cell="lstm", hidden=128, dropout=0.0, levels=256))
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    x = torch.randint(0, 256, (B, T + 1, 1)).float()

    def step() -> None:
        logits, _ = model(x[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), x[:, 1:, 0].long().flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()

    return B * T / median_time(step, repeats)


def flat_generation(streams: int, seconds: float, repeats: int) -> float:
    from noizenet.models import ModelSpec, NoizeNet
    from noizenet.models.flat_kernels import run_categorical

    torch.manual_seed(0)
    weights = kernel_of(NoizeNet(ModelSpec(cell="lstm", hidden=128, levels=256)).eval()).weights
    rng = np.random.default_rng(0)
    n = int(seconds * SR)
    forced = rng.integers(0, 256, (streams, 256))
    uniforms = rng.random((streams, n))
    values = np.linspace(-1, 1, 256)

    def go() -> None:
        run_categorical(weights, forced, n, level_values=values, uniforms=uniforms)

    return streams * n / median_time(go, repeats) / SR


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, shorter takes")
    args = parser.parse_args()
    repeats = 2 if args.quick else 4
    print("| size | train 1 thread | train 2 threads | generate 1 stream | generate 64 streams |")
    print("|---|---|---|---|---|")
    short = 2.0 if args.quick else 4.0, 0.1 if args.quick else 0.25
    f1, f2 = flat_training(1, repeats), flat_training(2, repeats)
    g1, g64 = flat_generation(1, short[0], repeats), flat_generation(64, short[1], repeats)
    print(f"| flat mu-law LSTM 128 (yardstick) | {f1:,.0f} samples/s | {f2:,.0f} | {g1:.1f}x | "
          f"{g64:.1f}x |", flush=True)  # fmt: skip
    for name, kw in SIZES.items():
        spec = SampleRNNSpec(embedding=16, levels=256, **kw)
        t1 = training(spec, 1, repeats)
        t2 = training(spec, 2, repeats)
        g1 = generation(spec, 1, short[0], repeats)
        g64 = generation(spec, 64, short[1], repeats)
        print(f"| {name} | {t1:,.0f} samples/s | {t2:,.0f} | {g1:.1f}x | {g64:.1f}x |", flush=True)


if __name__ == "__main__":
    main()
