"""The ``noizenet`` command line: argument parsing, progress, exit codes; no logic of its own.

Heavy modules are imported inside the verb handlers, so ``noizenet --help`` answers at once.
Exit codes: 0 success, 2 bad input or configuration (one-line message), 1 an unexpected error.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from pathlib import Path
from typing import Any

from noizenet import __version__
from noizenet.config import (
    CELLS,
    DEFAULT_PRESET,
    WHOLE_SONG,
    Config,
    FlagSpec,
    GenerationConfig,
    flag_specs,
    generation_defaults,
    generation_flag_specs,
    parse_checkpoint,
    parse_chunk,
    parse_duration,
    split_list,
)
from noizenet.demo import DEMO_EPOCHS, DEMO_SECONDS
from noizenet.errors import ConfigError, NoizeNetError

EXIT_USAGE = 2
RANDOM_SEED_HELP = "random seed: fixes data split and order, initialisation, dropout and sampling"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the full ``train`` usage runs to a screen)."""

    def error(self, message: str) -> Any:
        from noizenet.train.distributed import env_rank

        # under torchrun every rank parses the same command line: rank 0 alone says what is wrong
        if env_rank()[0] != 0:
            self.exit(EXIT_USAGE)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _config_arg(parse: Any) -> Any:
    """A config parser (``--chunk``, ``--max-time``) for argparse: the config's own message."""

    def arg(text: str) -> Any:
        try:
            return parse(text)
        except NoizeNetError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return arg


def _family(text: str) -> str:
    """``--model FAMILY``: a registered family; a cell name (the flag's meaning before families)
    gets one line pointing at ``--cell``."""
    if text in CELLS:
        raise argparse.ArgumentTypeError(
            f"{text!r} is a recurrent cell, give it as --cell {text} (--model names the family: "
            "flat or samplernn)"
        )
    from noizenet.models import FAMILIES  # torch: only once the flag is given

    if text not in FAMILIES:
        raise argparse.ArgumentTypeError(
            f"unknown family {text!r} (choose from {', '.join(FAMILIES)})"
        )
    return text


_PARSED_FLAGS = {
    "train.chunk": _config_arg(parse_chunk),
    "train.max_time": _config_arg(parse_duration),
    "model.family": _family,
}


def _add_train_flags(p: argparse.ArgumentParser) -> None:
    """One flag per config field, generated from :mod:`noizenet.config`."""
    p.add_argument(
        "--config", type=Path, metavar="FILE", help="TOML config to start from (flags override it)"
    )
    groups: dict[str, Any] = {}
    for spec in flag_specs():
        section = spec.dest.split(".")[0] if "." in spec.dest else "run"
        group = groups.get(section) or groups.setdefault(
            section, p.add_argument_group(f"{section} settings")
        )
        help_text = _with_default(spec)
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
            kind = _PARSED_FLAGS.get(spec.dest, spec.kind)
            metavar = {
                "train.chunk": f"{{N,{WHOLE_SONG}}}",
                "train.max_time": "SECONDS",
                "model.family": "{flat,samplernn}",
            }.get(spec.dest) or _metavar(spec)
            group.add_argument(
                spec.flag,
                dest=spec.dest,
                type=kind,
                default=None,
                choices=[c for c in spec.choices if c != ""] if spec.choices else None,  # "": unset
                metavar=metavar,
                help=help_text,
            )


def _with_default(spec: FlagSpec) -> str:
    """The help text with its default, unless the text already says it (or there is none)."""
    if "(default:" in spec.help or spec.default in ("", None):
        return spec.help
    return f"{spec.help} (default: {spec.default})"


def _metavar(spec: FlagSpec) -> str | None:
    """A plain value name (``EPOCHS``, not ``TRAIN.EPOCHS``); choices show themselves."""
    if spec.choices:
        return None
    return "N" if spec.flag == "--random-seed" else spec.dest.rpartition(".")[2].upper()


class _DeprecatedSeed(argparse.Action):
    """``--seed N`` on train, demo and experiment: the random seed, as before ``--random-seed``.

    Kept for one release; ``--seed`` is the priming audio wherever it is documented.
    """

    def __call__(self, parser: Any, namespace: Any, values: Any, option: Any = None) -> None:
        print(
            f"{parser.prog}: --seed N is deprecated and will go: use --random-seed {values} "
            "(--seed names the priming audio, as in generate)",
            file=sys.stderr,
        )
        setattr(namespace, self.dest, values)


def _add_random_seed(p: Any, dest: str, default: Any) -> None:
    """``--random-seed`` and its deprecated spelling ``--seed N`` (hidden from --help)."""
    shown = f" (default: {default})" if default is not None else " (default: 0)"
    p.add_argument(
        "--random-seed",
        dest=dest,
        type=int,
        default=default,
        metavar="N",
        help=RANDOM_SEED_HELP + shown,
    )
    p.add_argument("--seed", dest=dest, type=int, action=_DeprecatedSeed, help=argparse.SUPPRESS)


def _add_generation_flags(p: argparse.ArgumentParser, verb: str) -> None:
    """One flag per :class:`~noizenet.config.GenerationConfig` field the verb offers."""
    specs = generation_flag_specs(verb)
    for spec in specs:
        p.add_argument(
            spec.flag,
            dest=spec.dest,
            type=spec.kind,
            default=None,
            metavar=_metavar(spec),
            help=_with_default(spec),
        )
    p.set_defaults(_flag_names={s.dest: s.flag for s in specs})


def _add_checkpoint_flag(p: argparse.ArgumentParser) -> None:
    """``--checkpoint`` where it is not a generation flag (reproduce, report)."""
    field = GenerationConfig.__dataclass_fields__["checkpoint"]
    p.add_argument(
        "--checkpoint",
        default="last",
        metavar="last|best|epoch:N|PATH",
        help=f"{field.metadata['help']} (default: last)",
    )


def generation_from_args(args: argparse.Namespace, verb: str) -> GenerationConfig:
    """The generation settings the flags of ``verb`` give (defaults for the rest), validated."""
    base = generation_defaults(verb)
    given = {
        s.dest.partition(".")[2]: getattr(args, s.dest)
        for s in generation_flag_specs(verb)
        if getattr(args, s.dest, None) is not None
    }
    return base.with_overrides(given)


_SETTING = re.compile(r"\bgeneration\.([a-z_]+)")


def flag_message(message: str, flag_names: dict[str, str]) -> str:
    """A library message with its setting names (``generation.seconds``) as the verb's flags
    (``--seconds``)."""
    return _SETTING.sub(lambda m: flag_names.get(m.group(0), m.group(0)), message)


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
    from_file = getattr(args, "config", None)
    cfg = Config.load(from_file) if from_file else Config()
    overrides = {
        s.dest: getattr(args, s.dest)
        for s in flag_specs()
        if getattr(args, s.dest, None) is not None
    }
    if DEFAULT_PRESET and not from_file and "preset" not in overrides:
        overrides = {"preset": DEFAULT_PRESET, **overrides}
    return cfg.with_overrides(overrides) if overrides else cfg


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="noizenet",
        description="Train recurrent networks (RNN, LSTM, GRU) on raw music audio and generate "
        "new music from a seed.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--version", action="version", version=f"noizenet {__version__}")
    # the same two flags after the verb too; SUPPRESS keeps the top-level value when absent
    common = _Parser(add_help=False)
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
        help="embedded corpus -> train the paper's LSTM and RNN, a mu-law LSTM and a 2-tier "
        "SampleRNN -> reproduce, generate, plot (a few minutes on a laptop CPU)",
        description="Build the embedded corpus, train the paper's LSTM and an RNN with the "
        "same settings and, beside them, a mu-law LSTM (a categorical head) and a 2-tier "
        "SampleRNN (preset samplernn, 2 epochs); reproduce a "
        "held-out song with each, generate from every seed kind and write every figure.",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("runs/demo"),
        metavar="DIR",
        help="demo folder (default: runs/demo)",
    )
    p.add_argument(
        "--epochs", type=int, default=None, help=f"epochs of each model (default: {DEMO_EPOCHS})"
    )
    p.add_argument(
        "--seconds",
        type=float,
        default=None,
        help=f"seconds of each take and reproduction (default: {DEMO_SECONDS:g})",
    )
    p.add_argument("--force", action="store_true", help="overwrite an earlier demo")
    _add_random_seed(p, "random_seed", 0)

    p = sub.add_parser(
        "train",
        parents=[common],
        help="train a model into a run folder",
        description=f"Train a NoizeNet. Without --preset or --config the preset is "
        f"{DEFAULT_PRESET or 'paper'} (--preset paper: the paper's headline configuration); "
        "every flag maps to one config field.",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="RUN",
        help="run folder (default: runs/CELL-hHIDDEN-sSEED, runs/samplernn-CELL-hHIDDEN-sSEED)",
    )
    p.add_argument("--force", action="store_true", help="overwrite a run already in --out")
    p.add_argument(
        "--resume",
        type=Path,
        default=None,
        metavar="RUN",
        help="continue the run in RUN from its last checkpoint, with its own config.toml; "
        "only --epochs may be given (to train further), other flags must match the run",
    )
    _add_train_flags(p)
    p.add_argument("--seed", dest="seed", type=int, action=_DeprecatedSeed, help=argparse.SUPPRESS)

    p = sub.add_parser(
        "report",
        parents=[common],
        help="HTML page of one or more runs: tables, loss curves, audio players, figures",
        description="Write a self-contained HTML report of one or more run folders: settings, "
        "provenance, metrics and evaluation tables, loss curves, an audio player beside the "
        "views of every take, each reproduction beside its original and, for several runs, "
        "aligned comparison tables. It loads nothing from the network.",
    )
    p.add_argument("runs", type=Path, nargs="+", metavar="RUN", help="run folder(s)")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="FILE",
        help="HTML file (default: RUN/report.html for one run, ./report.html for several)",
    )
    p.add_argument(
        "--inline",
        action="store_true",
        help="embed figures and audio in the page (one file to mail) instead of linking them",
    )
    p.add_argument(
        "--checkpoint",
        default=None,
        metavar="last|best|epoch:N|PATH",
        help="show only the takes made from these weights, as their names record (default: all)",
    )

    p = sub.add_parser(
        "generate",
        parents=[common],
        help="prime on a seed and let the model run free",
        description="Prime the hidden state on a seed, then feed every output "
        "back as the next input.",
    )
    p.add_argument("run", type=Path, help="run folder")
    _add_generation_flags(p, "generate")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="FILE",
        help="WAV file, replaced whole if it exists; with --variations N, _vI is added before "
        ".wav (default: RUN/audio/gen_SEED_eEPOCHS[_inj-MODE | _tT[-T1][_pP]]_vI.wav, e.g. "
        "gen_perlin_e10_v0.wav or, from a mu-law run, gen_perlin_e10_t1_v0.wav; a default name "
        "never replaces an earlier take: a taken name gets _1, _2, ...)",
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
    p.add_argument(
        "--song", type=Path, required=True, metavar="FILE", help="audio file to reproduce"
    )
    p.add_argument("--seconds", type=float, default=10.0, help="length to reproduce (default: 10)")
    p.add_argument(
        "--offset", type=float, default=0.0, help="start this many seconds in (default: 0)"
    )
    _add_checkpoint_flag(p)
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="FILE",
        help="WAV file, replaced whole if it exists (default: RUN/audio/reproduction_SONG.wav; "
        "a default name never replaces an earlier one: a taken name gets _1, _2, ...)",
    )
    p.add_argument("--no-plot", action="store_true", help="do not draw the comparison")

    p = sub.add_parser(
        "evaluate",
        parents=[common],
        help="a run's metrics on held-out tracks, beside persistence, LPC-32 and real audio",
        description="Measure a run on held-out tracks: one-step prediction SNR beside "
        "persistence and linear prediction (LPC-32 fitted on the run's training tracks), bits "
        "per sample (categorical codecs), and for free-running generation primed on each "
        "track: collapse time, log-mel Frechet distance to the held-out audio (not FAD), "
        "spectral flatness, DC offset, clipped fraction. Prints a table and writes "
        "RUN/evaluation.json.",
    )
    p.add_argument("run", type=Path, help="run folder")
    p.add_argument(
        "--data",
        metavar="SOURCE",
        default=None,
        help="folder or 'embedded' with held-out audio; tracks the run trained on are left out "
        "(default: the run's validation tracks)",
    )
    p.add_argument("--songs", type=int, default=3, help="at most this many tracks (default: 3)")
    p.add_argument(
        "--seconds", type=float, default=None, help="seconds of each track (default: the run's)"
    )
    _add_generation_flags(p, "evaluate")

    p = sub.add_parser(
        "experiment",
        parents=[common],
        help="the paper's experiments, trained and measured: list | run NAME | run all",
        description="Run the paper's experiments. Each writes results.md (tables), "
        "results.csv and figures into OUT/NAME/ and prints its tables; trained runs are kept "
        "in OUT/runs/ and reused.",
    )
    exp_sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    exp_sub.add_parser("list", parents=[common], help="name and one line for each experiment")
    q = exp_sub.add_parser(
        "run",
        parents=[common],
        help="run one experiment, or all",
        description="Run one experiment (see 'noizenet experiment list') or 'all'.",
    )
    q.add_argument("name", help="experiment name, or 'all'")
    q.add_argument(
        "--data",
        metavar="SOURCE",
        default="embedded",
        help="folder of songs, or 'embedded' (default: embedded)",
    )
    q.add_argument(
        "--scale",
        choices=("quick", "paper"),
        default="quick",
        help="quick: tiny models, minutes on a laptop CPU; paper: the paper's sizes, hours to "
        "days without a GPU (default: quick)",
    )
    q.add_argument(
        "--out",
        type=Path,
        default=Path("runs/experiments"),
        metavar="OUT",
        help="output folder: OUT/NAME/ per experiment, OUT/runs/ for trained runs "
        "(default: runs/experiments)",
    )
    _add_random_seed(q, "random_seed", 0)
    q.add_argument("--fresh", action="store_true", help="retrain runs already in OUT/runs")
    tiers = q.add_argument_group("tiers experiment settings (the tiers experiment only)")
    for flag, kind, metavar, text in TIERS_FLAGS:
        dest = _tiers_dest(flag)
        tiers.add_argument(flag, dest=dest, type=kind, default=None, metavar=metavar, help=text)

    p = sub.add_parser(
        "plot",
        parents=[common],
        help="waveform, envelope and spectrograms of an audio file",
        description="Draw the paper's views of an audio file: sample view, "
        "envelope view and spectrograms (linear and log frequency).",
    )
    p.add_argument("file", type=Path, help="audio file")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder for the PNGs (default: beside the file)",
    )
    p.add_argument("--seconds", type=float, default=None, help="only the first SECONDS")
    p.add_argument(
        "--offset", type=float, default=0.0, help="start this many seconds in (default: 0)"
    )
    p = sub.add_parser(
        "bench",
        parents=[common],
        help="training and generation speed beside the paper's algorithms",
        description="Measure training samples/s and generation real-time factor for hidden 50 "
        "and 512, MSE and mu-law heads, 1 and 64 streams, and for train's default preset "
        f"({DEFAULT_PRESET}) and the hierarchical ones (samplernn, samplernn-3t) at their own "
        "sizes, beside the paper's sliding-window "
        "training, its window re-ingest generation and a plain per-sample PyTorch loop. "
        "Medians of --repeats timed runs after a warm-up, all in this one process.",
    )
    p.add_argument("--repeats", type=int, default=5, help="timed repetitions (default: 5)")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.add_argument("--quick", action="store_true", help="a fraction of the work (smoke test)")

    p = sub.add_parser(
        "studio",
        parents=[common],
        help="local web page: browse runs, generate and compare takes, train",
        description="Serve a local web page over the runs below RUNS_DIR: their metrics and "
        "loss curves, generation with a player and spectrogram for every take, takes side by "
        "side, two runs compared, and training started, watched, stopped and resumed. It loads "
        "nothing from the network. Needs pip install 'noizenet[studio]'.",
    )
    p.add_argument("runs_dir", type=Path, nargs="?", default=Path("runs"), metavar="RUNS_DIR")
    p.add_argument("--port", type=int, default=8765, help="port (default: 8765)")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only; "
        "anything else lets other machines in, without a password)",
    )
    p.add_argument(
        "--max-upload-mb", type=float, default=200.0, help="largest seed song upload (default: 200)"
    )

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
    p.add_argument(
        "--config", type=Path, metavar="FILE", help="TOML config to start from (flags override it)"
    )
    p.add_argument("--seed", dest="seed", type=int, action=_DeprecatedSeed, help=argparse.SUPPRESS)
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
                metavar=_metavar(spec),
                help=_with_default(spec),
            )


# -- verbs ------------------------------------------------------------------------------------
def _cmd_demo(args: argparse.Namespace) -> int:
    from noizenet.demo import run_demo

    run_demo(
        args.out,
        epochs=args.epochs,
        seconds=args.seconds,
        force=args.force,
        random_seed=args.random_seed,
        progress=not args.quiet,
    )
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from noizenet.train import train

    if args.resume is not None:
        return _resume_train(args)
    cfg = config_from_args(args)
    family = "" if cfg.model.family == "flat" else f"{cfg.model.family}-"
    out = args.out or Path("runs") / f"{family}{cfg.model.cell}-h{cfg.model.hidden}-s{cfg.seed}"
    run = train(cfg, out, force=args.force, progress=not args.quiet)
    return _trained(run)


def _trained(run: Any) -> int:
    """After ``train``: the loss curve and the report, drawn by the verb, not by training."""
    if run is not None:  # under torchrun, rank 0 speaks for the run
        from noizenet.report import finish_run

        finish_run(run)
        print(f"run folder: {run.path}")
    return 0


def _resume_train(args: argparse.Namespace) -> int:
    """``train --resume RUN``: the run's config.toml, with only --epochs allowed to change."""
    from noizenet.train import resume_config, train

    if args.config is not None:
        raise NoizeNetError("--config cannot be combined with --resume (RUN/config.toml is used)")
    if args.out is not None and args.out.resolve() != args.resume.resolve():
        raise NoizeNetError(f"--out {args.out} differs from --resume {args.resume}; give only one")
    from noizenet.train.distributed import env_rank

    cfg = None  # under torchrun only rank 0 reads the run folder, and passes the config on
    if env_rank()[0] == 0:
        saved = resume_config(args.resume)
        overrides = {
            s.dest: getattr(args, s.dest)
            for s in flag_specs()
            if getattr(args, s.dest, None) is not None
        }
        cfg = resume_config(args.resume, saved.with_overrides(overrides) if overrides else saved)
    run = train(cfg, args.resume, resume=True, force=args.force, progress=not args.quiet)
    return _trained(run)


def _writable_parent(out: Path | None) -> None:
    """Fail before the work, not after it, when the output cannot be written."""
    if out is not None:
        from noizenet.io import ensure_writable_dir

        ensure_writable_dir(out.parent)


def _cmd_report(args: argparse.Namespace) -> int:
    from noizenet.locks import note_if_training
    from noizenet.report import write_report

    if args.checkpoint is not None:
        parse_checkpoint(args.checkpoint)
    for run in args.runs:  # a run still training is reported as it stands (its last epoch)
        note_if_training(run, weights=False)
    path = write_report(args.runs, args.out, inline=args.inline, progress=not args.quiet,
                        checkpoint=args.checkpoint)  # fmt: skip
    print(f"wrote {path}")
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from noizenet.generate import generate
    from noizenet.locks import note_if_training
    from noizenet.run import Run

    gen = generation_from_args(args, "generate")  # every value checked before the run opens
    _writable_parent(args.out)
    run = Run.open(args.run)  # once: generation and the figures both need it
    note_if_training(run.path)  # a run still training: its last complete weights
    warm = None
    if not args.no_plot:  # the figures' imports overlap the kernel once it runs
        from noizenet.analysis.figures import prepare_in_background as warm
    # generate() refuses a request too large for the machine before it computes or writes
    takes = generate(run, gen, out=args.out, figures=not args.no_plot, progress=not args.quiet,
                     on_running=warm)  # fmt: skip
    for take in takes:
        print(f"wrote {take.path}")
        if not args.no_plot and take.path is not None:
            from noizenet.analysis.figures import wav_figures

            # read back from the file a block at a time: a long take is never held whole
            wav_figures(take.path, out_dir=take.path.parent, stem=take.path.stem,
                        title=take.path.name)  # fmt: skip
    return 0


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from noizenet.generate import reproduce
    from noizenet.locks import note_if_training
    from noizenet.run import Run

    _positive("--seconds", args.seconds)
    _not_negative("--offset", args.offset)
    parse_checkpoint(args.checkpoint)
    _writable_parent(args.out)
    run = Run.open(args.run)
    note_if_training(run.path)
    # reproduce() refuses a request too large for the machine before it computes or writes
    rep = reproduce(run, args.song, seconds=args.seconds, offset=args.offset, out=args.out,
                    checkpoint=args.checkpoint, figures=not args.no_plot)  # fmt: skip
    print(f"wrote {rep.path} (one-step prediction SNR {rep.snr_db:.2f} dB)")
    if not args.no_plot and rep.path is not None:
        from noizenet.analysis.figures import comparison_figure

        sr = run.sr
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


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from noizenet.analysis.evaluate import evaluate, format_table
    from noizenet.locks import note_if_training
    from noizenet.run import Run

    gen = generation_from_args(args, "evaluate")
    note_if_training(args.run)
    # evaluate() refuses a request too large for the machine before it computes
    result = evaluate(
        Run.open(args.run), data=args.data, songs=args.songs, seconds=args.seconds, generation=gen
    )
    held = ", ".join(t["id"] for t in result["held_out"])
    print(f"held-out tracks: {held}")
    print(f"LPC-32 fitted on {result['lpc']['fitted_on']}")
    print(format_table(result))
    print(f"wrote {args.run / 'evaluation.json'}")
    return 0


TIERS_FLAGS = (
    ("--max-time", _config_arg(parse_duration), "SECONDS",
     "training time of every model, SECONDS or [HH:]MM:SS (default: 600)"),
    ("--jobs", int, "N", "models trained side by side, each in its own process (default: 2)"),
    ("--threads", int, "N", "torch threads of each model's training (default: 1)"),
    ("--val-data", str, "PATH", "validate and measure on these files: a folder, a file or a "
     "glob such as 'music/*original*.opus' (left out of training; default: hold out "
     "--val-songs of --data)"),
    ("--val-songs", int, "N", "songs held out of --data without --val-data (default: 3)"),
    ("--seconds", float, "S", "seconds of each training and held-out song (default: 30)"),
    ("--offset", float, "S", "seconds skipped at the start of each song (default: 0)"),
    ("--take-seconds", float, "S", "length of every generated take (default: 30)"),
)  # fmt: skip


def _tiers_dest(flag: str) -> str:
    """A tiers flag's option name: ``--val-data`` sets what train's ``data.val_source`` does."""
    return "val_source" if flag == "--val-data" else flag[2:].replace("-", "_")


def _tiers_options(args: argparse.Namespace, names: list[str]) -> dict[str, Any] | None:
    """The tiers flags given, as the experiment's options; refused beside other experiments."""
    flags = {_tiers_dest(flag): flag for flag, *_ in TIERS_FLAGS}
    given = {d: getattr(args, d) for d in flags if getattr(args, d, None) is not None}
    if given and names != ["tiers"]:
        raise NoizeNetError(f"{flags[next(iter(given))]} applies to the tiers experiment only")
    for name in ("jobs", "threads", "val_songs"):
        if name in given and given[name] < 1:
            raise NoizeNetError(f"--{name.replace('_', '-')} must be >= 1, got {given[name]}")
    for name in ("max_time", "seconds", "take_seconds"):
        if name in given:
            _positive(f"--{name.replace('_', '-')}", given[name])
    if "offset" in given:
        _not_negative("--offset", given["offset"])
    return given or None


def _cmd_experiment(args: argparse.Namespace) -> int:
    from noizenet.experiments import EXPERIMENTS, get_experiment, run_experiment

    if args.action == "list":
        width = max(len(n) for n in EXPERIMENTS)
        for name, exp in EXPERIMENTS.items():
            print(f"{name:<{width}}  {exp.description} ({exp.paper})")
        return 0
    names = list(EXPERIMENTS) if args.name == "all" else [get_experiment(args.name).name]
    options = _tiers_options(args, names)
    trained: set[str] = set()
    for name in names:
        md = run_experiment(
            name,
            out=args.out,
            data=args.data,
            scale=args.scale,
            seed=args.random_seed,
            fresh=args.fresh,
            progress=not args.quiet,
            options=options if name == "tiers" else None,
            _trained=trained,
        )
        print()
        print(md.read_text(encoding="utf-8").split("\nSettings:")[0].rstrip())
        print()
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from noizenet.analysis.figures import audio_figures
    from noizenet.audio import SAMPLE_RATE, load
    from noizenet.io import ensure_writable_dir

    if args.seconds is not None:
        _positive("--seconds", args.seconds)
    _not_negative("--offset", args.offset)
    y = load(args.file, sr=SAMPLE_RATE, offset=args.offset, duration=args.seconds)
    out = ensure_writable_dir(args.out or args.file.parent)
    for path in audio_figures(
        y, sr=SAMPLE_RATE, out_dir=out, stem=args.file.stem, title=args.file.name
    ):
        print(f"wrote {path}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from noizenet.bench import rows_json, run_bench

    if args.repeats < 1:
        raise NoizeNetError(f"--repeats must be >= 1, got {args.repeats}")
    rows = run_bench(
        repeats=args.repeats, quick=args.quick, log=(lambda *a: None) if args.json else print
    )
    if args.json:
        print(json.dumps(rows_json(rows), indent=2))
    return 0


def _positive(flag: str, value: float) -> None:
    if not math.isfinite(value) or value <= 0:
        raise NoizeNetError(f"{flag} must be a finite number > 0, got {value:g}")


def _not_negative(flag: str, value: float) -> None:
    if not math.isfinite(value) or value < 0:
        raise NoizeNetError(f"{flag} must be a finite number >= 0, got {value:g}")


def _cmd_studio(args: argparse.Namespace) -> int:
    from noizenet.studio import serve

    serve(args.runs_dir, host=args.host, port=args.port, max_upload_mb=args.max_upload_mb)
    return 0


def _cmd_data(args: argparse.Namespace) -> int:
    from noizenet.corpus.inspect import format_inspection, inspect_source

    cfg = config_from_args(args).with_overrides({"data.source": args.source})

    def log(line: str) -> None:
        print(line, file=sys.stderr)

    report = inspect_source(cfg, decode=args.decode, progress=not args.quiet, log=log)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print("\n".join(format_inspection(report)))
    if "error" in report["run"]:  # nothing usable: the listing above says which file is why
        raise NoizeNetError(report["run"]["error"])
    return 0


COMMANDS = {
    "demo": _cmd_demo,
    "train": _cmd_train,
    "report": _cmd_report,
    "generate": _cmd_generate,
    "reproduce": _cmd_reproduce,
    "evaluate": _cmd_evaluate,
    "experiment": _cmd_experiment,
    "plot": _cmd_plot,
    "bench": _cmd_bench,
    "data": _cmd_data,
    "studio": _cmd_studio,
}


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


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
        code = getattr(exc, "exit_code", EXIT_USAGE)  # an interrupted run: 128 + signal
        label = "error: " if code == EXIT_USAGE else ""
        message = _one_line(exc)
        if isinstance(exc, ConfigError):  # a setting's name, as the flag the user typed
            message = flag_message(message, getattr(args, "_flag_names", {}))
        if not getattr(exc, "quiet", False):  # torchrun: rank 0 already said what all ranks hit
            print(f"noizenet {args.verb}: {label}{message}", file=sys.stderr)
        return code
    except (OSError, MemoryError) as exc:
        # the machine said no (full disk, no permission, no memory): the user's to fix
        if args.debug:
            raise
        what = "out of memory" if isinstance(exc, MemoryError) else "error"
        print(f"noizenet {args.verb}: {what}: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"noizenet {args.verb}: interrupted", file=sys.stderr)
        return 130
