"""The ``noizenet`` command line: argument parsing, progress, exit codes; no logic of its own.

Heavy modules are imported inside the verb handlers, so ``noizenet --help`` answers at once.
Exit codes: 0 success, 2 bad input or configuration (one-line message), 1 an unexpected error.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from noizenet.config import WHOLE_SONG, Config, flag_specs, parse_chunk, split_list
from noizenet.errors import NoizeNetError

EXIT_USAGE = 2


def _add_train_flags(p: argparse.ArgumentParser) -> None:
    """One flag per config field, generated from :mod:`noizenet.config`."""
    p.add_argument("--config", type=Path, help="TOML config to start from (flags override it)")
    groups: dict[str, Any] = {}
    for spec in flag_specs():
        section = spec.dest.split(".")[0] if "." in spec.dest else "run"
        group = groups.get(section) or groups.setdefault(
            section, p.add_argument_group(f"{section} settings")
        )
        help_text = f"{spec.help} (default: {spec.default})"
        if spec.kind is bool:
            group.add_argument(
                spec.flag,
                dest=spec.dest,
                default=None,
                action=argparse.BooleanOptionalAction,
                help=help_text,
            )
        elif spec.kind is list:
            _add_list_flag(group, spec)
        else:
            kind = parse_chunk if spec.dest == "train.chunk" else spec.kind
            metavar = f"{{N,{WHOLE_SONG}}}" if spec.dest == "train.chunk" else None
            group.add_argument(
                spec.flag,
                dest=spec.dest,
                type=kind,
                default=None,
                choices=spec.choices,
                metavar=metavar,
                help=help_text,
            )


def _add_list_flag(group: Any, spec: Any) -> None:
    """A list setting: comma-separated values, and the flag may be given again to add more."""
    choices = f" ({', '.join(spec.choices)})" if spec.choices else ""
    group.add_argument(
        spec.flag,
        dest=spec.dest,
        type=split_list,
        action="extend",
        default=None,
        metavar="A[,B...]",
        help=f"{spec.help}{choices}",
    )


def config_from_args(args: argparse.Namespace) -> Config:
    """The config file (or defaults) with every given flag applied on top."""
    cfg = Config.load(args.config) if getattr(args, "config", None) else Config()
    overrides = {
        s.dest: getattr(args, s.dest)
        for s in flag_specs()
        if getattr(args, s.dest, None) is not None
    }
    return cfg.with_overrides(overrides) if overrides else cfg


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="noizenet",
        description="Train recurrent networks (RNN, LSTM, GRU) on raw music audio and generate "
        "new music from a seed.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    from noizenet import __version__

    parser.add_argument("--version", action="version", version=f"noizenet {__version__}")
    # the same two flags after the verb too; SUPPRESS keeps the top-level value when absent
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks on errors"
    )
    common.add_argument(
        "--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress bars"
    )
    sub = parser.add_subparsers(dest="verb", metavar="VERB")

    p = sub.add_parser(
        "demo",
        parents=[common],
        help="embedded corpus -> train LSTM and RNN -> reproduce, "
        "generate, plot (a few minutes on a laptop CPU)",
        description="Build the embedded corpus, train the paper's LSTM and an RNN "
        "with the same settings, reproduce a held-out song with both, generate "
        "from every seed kind and write every figure.",
    )
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="demo folder")
    p.add_argument("--epochs", type=int, default=None, help="override the demo's epochs")
    p.add_argument(
        "--seconds", type=float, default=None, help="override the generated length in seconds"
    )
    p.add_argument("--force", action="store_true", help="overwrite an earlier demo")
    p.add_argument("--seed", type=int, default=0, help="random seed")

    p = sub.add_parser(
        "train",
        parents=[common],
        help="train a model into a run folder",
        description="Train a NoizeNet. Defaults are the paper's headline "
        "configuration; every flag maps to one config field.",
    )
    p.add_argument(
        "--out", type=Path, default=None, help="run folder (default: runs/CELL-hHIDDEN-sSEED)"
    )
    p.add_argument("--force", action="store_true", help="overwrite a run already in --out")
    _add_train_flags(p)

    p = sub.add_parser(
        "generate",
        parents=[common],
        help="prime on a seed and let the model run free",
        description="Prime the hidden state on a seed, then feed every output "
        "back as the next input.",
    )
    p.add_argument("run", type=Path, help="run folder")
    p.add_argument(
        "--seed",
        default="perlin",
        help="song:PATH[@OFFSET_S], white, perlin or silence (default: perlin)",
    )
    p.add_argument("--seconds", type=float, default=10.0, help="generated length (default: 10)")
    p.add_argument(
        "--seed-seconds", type=float, default=1.0, help="seconds of seed to prime on (default: 1)"
    )
    p.add_argument(
        "--inject",
        default=None,
        help="noise injection: periodic:K (every K steps multiply the fed-back value "
        "by N(-1,1), the authors' code) or stall:M:EPS:SIGMA (when the last M outputs "
        "span < EPS, add N(0,SIGMA)); model units",
    )
    p.add_argument("--variations", type=int, default=1, help="independent takes (default: 1)")
    p.add_argument("--random-seed", type=int, default=0, help="fixes noise seeds and injection")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="WAV file (default: RUN/audio/gen_SEED_eEPOCHS_vI.wav)",
    )
    p.add_argument("--no-plot", action="store_true", help="do not draw the takes' views")

    p = sub.add_parser(
        "reproduce",
        parents=[common],
        help="teacher-forced one-step prediction of a song",
        description="Feed a song one sample at a time and write the model's "
        "one-step predictions (the paper's reproduction, figures 23-25).",
    )
    p.add_argument("run", type=Path, help="run folder")
    p.add_argument("--song", type=Path, required=True, help="audio file to reproduce")
    p.add_argument("--seconds", type=float, default=10.0, help="length to reproduce")
    p.add_argument("--offset", type=float, default=0.0, help="start this many seconds in")
    p.add_argument("--out", type=Path, default=None, help="WAV file")
    p.add_argument("--no-plot", action="store_true", help="do not draw the comparison")

    p = sub.add_parser(
        "plot",
        parents=[common],
        help="waveform, envelope and spectrograms of an audio file",
        description="Draw the paper's views of an audio file: sample view, "
        "envelope view and spectrograms (linear and log frequency).",
    )
    p.add_argument("file", type=Path, help="audio file")
    p.add_argument(
        "--out", type=Path, default=None, help="folder for the PNGs (default: beside the file)"
    )
    p.add_argument("--seconds", type=float, default=None, help="only the first SECONDS")
    p.add_argument("--offset", type=float, default=0.0, help="start this many seconds in")

    p = sub.add_parser(
        "data",
        parents=[common],
        help="inspect a data source: its tracks, what is broken, what a run would use",
        description="Work with data sources (a folder, fma:ROOT or 'embedded').",
    )
    data_sub = p.add_subparsers(dest="data_verb", metavar="SUBVERB", required=True)
    p = data_sub.add_parser(
        "inspect",
        parents=[common],
        help="one line per track, totals per genre and split, and what a run would use",
        description="List every track the source and filters select (id, genre, split, "
        "duration, source sample rate, channels, status or skip reason), totals per genre "
        "and split, and the songs a training run with the same flags would use. The chosen "
        "songs are decoded into the cache to know they are usable; --decode decodes all.",
    )
    p.add_argument("source", help="a folder of audio files, fma:ROOT, or 'embedded'")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--decode", action="store_true", help="decode every listed track first (final statuses)"
    )
    _add_data_flags(p)
    return parser


def _add_data_flags(p: argparse.ArgumentParser) -> None:
    """The data settings of ``train`` (filters, songs, seconds, cache) and --seed, --config."""
    p.add_argument("--config", type=Path, help="TOML config to start from (flags override it)")
    for spec in flag_specs():
        if spec.dest == "data.source" or not (spec.dest.startswith("data.") or spec.dest == "seed"):
            continue
        if spec.kind is list:
            _add_list_flag(p, spec)
        else:
            p.add_argument(
                spec.flag,
                dest=spec.dest,
                type=spec.kind,
                default=None,
                choices=spec.choices,
                help=f"{spec.help} (default: {spec.default})",
            )


# -- verbs ------------------------------------------------------------------------------------
def _cmd_demo(args: argparse.Namespace) -> int:
    from noizenet.demo import run_demo

    run_demo(
        args.out,
        epochs=args.epochs,
        seconds=args.seconds,
        force=args.force,
        seed=args.seed,
        progress=not args.quiet,
    )
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from noizenet.train import train

    cfg = config_from_args(args)
    out = args.out or Path("runs") / f"{cfg.model.cell}-h{cfg.model.hidden}-s{cfg.seed}"
    run = train(cfg, out, force=args.force, progress=not args.quiet)
    print(f"run folder: {run.path}")
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from noizenet.generate import generate

    takes = generate(
        args.run,
        seed=args.seed,
        seconds=args.seconds,
        seed_seconds=args.seed_seconds,
        inject=args.inject,
        variations=args.variations,
        random_seed=args.random_seed,
        out=args.out,
    )
    for take in takes:
        print(f"wrote {take.path}")
        if not args.no_plot and take.path is not None:
            from noizenet.analysis.figures import audio_figures

            audio_figures(
                take.audio,
                sr=_sr(args.run),
                out_dir=take.path.parent,
                stem=take.path.stem,
                title=take.path.name,
            )
    return 0


def _sr(run: Path) -> int:
    from noizenet.run import Run

    return Run.open(run).sr


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from noizenet.generate import reproduce

    rep = reproduce(args.run, args.song, seconds=args.seconds, offset=args.offset, out=args.out)
    print(f"wrote {rep.path} (one-step prediction SNR {rep.snr_db:.2f} dB)")
    if not args.no_plot and rep.path is not None:
        from noizenet.analysis.figures import comparison_figure

        sr = _sr(args.run)
        mid = rep.original.size / sr / 2  # 20 ms in the middle, where the sample view is legible
        fig = comparison_figure(
            {"original": rep.original, "reproduction": rep.predicted},
            sr=sr,
            out=rep.path.with_suffix(".png"),
            title=f"reproduction of {args.song.name}",
            zoom_s=(mid, mid + 0.02),
        )
        print(f"wrote {fig}")
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from noizenet.analysis.figures import audio_figures
    from noizenet.audio import SAMPLE_RATE, load

    y = load(args.file, sr=SAMPLE_RATE, offset=args.offset, duration=args.seconds)
    out = args.out or args.file.parent
    for path in audio_figures(
        y, sr=SAMPLE_RATE, out_dir=out, stem=args.file.stem, title=args.file.name
    ):
        print(f"wrote {path}")
    return 0


def _cmd_data(args: argparse.Namespace) -> int:
    import json

    from noizenet.corpus.inspect import format_inspection, inspect_source

    cfg = config_from_args(args).with_overrides({"data.source": args.source})

    def log(line: str) -> None:
        print(line, file=sys.stderr)

    report = inspect_source(cfg, decode=args.decode, progress=not args.quiet, log=log)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print("\n".join(format_inspection(report)))
    return 0


COMMANDS = {
    "demo": _cmd_demo,
    "train": _cmd_train,
    "generate": _cmd_generate,
    "reproduce": _cmd_reproduce,
    "plot": _cmd_plot,
    "data": _cmd_data,
}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verb is None:
        parser.print_help()
        return EXIT_USAGE
    if args.quiet:
        os.environ["NOIZENET_QUIET"] = "1"
    try:
        return COMMANDS[args.verb](args)
    except NoizeNetError as exc:
        if args.debug:
            raise
        print(f"noizenet {args.verb}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"noizenet {args.verb}: interrupted", file=sys.stderr)
        return 130
