"""One meaning per flag across verbs (issue 17), generated from the configs, shown in --help."""

from __future__ import annotations

import argparse
import re
from collections import defaultdict

import pytest

from noizenet.cli import build_parser, flag_message, main
from noizenet.config import GenerationConfig, generation_flag_specs
from noizenet.errors import ConfigError


def verbs(parser: argparse.ArgumentParser, name: str = "noizenet"):
    """(verb path, parser) for every verb and sub-verb."""
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, p in action.choices.items():
                yield from verbs(p, f"{name} {sub}")


def visible_flags():
    """(verb, flag, action) of every flag --help shows."""
    for verb, p in verbs(build_parser()):
        for action in p._actions:
            if action.help is argparse.SUPPRESS:
                continue
            for flag in action.option_strings:
                yield verb, flag, action


def meaning(action: argparse.Action) -> tuple:
    """What a flag sets: the setting's own name (``data.seconds`` -> ``seconds``), the kind of
    value it takes and how it is given."""
    kind = getattr(action.type, "__name__", None) or "str"
    return action.dest.rpartition(".")[2], kind, type(action).__name__, action.nargs


# a flag whose setting lives under another name in some verbs: --data names a data source
# everywhere (train's data.source); --gen-seconds is evaluate's name for generation.seconds;
# training's random seed is config.toml's ``seed`` (so that old runs load)
SAME_SETTING = {
    "--data": {"data", "source"},
    "--gen-seconds": {"seconds"},
    "--random-seed": {"seed", "random_seed"},
}


def test_every_flag_means_one_thing_across_verbs():
    seen: dict[str, dict[tuple, list[str]]] = defaultdict(lambda: defaultdict(list))
    for verb, flag, action in visible_flags():
        m = meaning(action)
        if flag in SAME_SETTING:
            assert m[0] in SAME_SETTING[flag], (verb, flag, m)
            m = (flag, *m[1:])
        seen[flag][m].append(verb)
    two = {flag: dict(ms) for flag, ms in seen.items() if len(ms) > 1}
    assert not two, two


def test_seed_is_the_priming_audio_and_random_seed_is_everywhere():
    """--seed takes song:PATH/white/perlin/silence wherever --help shows it; every verb with a
    random seed spells it --random-seed, an integer with its default shown."""
    by_verb = defaultdict(dict)
    for verb, flag, action in visible_flags():
        by_verb[verb][flag] = action
    assert by_verb["noizenet generate"]["--seed"].type is str
    assert "perlin" in by_verb["noizenet generate"]["--seed"].help
    for verb, flags in by_verb.items():
        if "--seed" in flags:
            assert flags["--seed"].type is str and "song:PATH" in flags["--seed"].help, verb
    for verb in ("train", "demo", "experiment run", "generate", "evaluate", "data inspect"):
        action = by_verb[f"noizenet {verb}"]["--random-seed"]
        assert action.type is int and "(default: 0)" in action.help, verb


def test_help_texts_show_one_default_and_plain_value_names():
    for verb, flag, action in visible_flags():
        assert action.help.count("(default:") <= 1, (verb, flag, action.help)
    for verb, p in verbs(build_parser()):  # no dotted setting names as value names
        assert not re.search(r"\b[A-Z_]+\.[A-Z_]+\b", p.format_help()), verb
    train = dict(
        next(p for v, p in verbs(build_parser()) if v == "noizenet train")._option_string_actions
    )
    assert train["--data"].metavar == "SOURCE" and train["--epochs"].metavar == "EPOCHS"
    assert train["--cache-dir"].help.endswith("~/.cache/noizenet)")


def test_generation_flags_come_from_the_config():
    specs = {s.flag: s for s in generation_flag_specs("generate")}
    assert list(specs) == [
        "--seed",
        "--seconds",
        "--seed-seconds",
        "--inject",
        "--temperature",
        "--top-p",
        "--variations",
        "--random-seed",
        "--checkpoint",
    ]
    cfg = GenerationConfig()
    for spec in specs.values():
        assert spec.default == getattr(cfg, spec.dest.partition(".")[2])
    evaluate = {s.flag: s for s in generation_flag_specs("evaluate")}
    assert "--top-p" in evaluate and "--seed" not in evaluate
    assert evaluate["--gen-seconds"].default == 5.0


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        ({"seconds": 0}, "generation.seconds: must be > 0"),
        ({"seconds": "long"}, "generation.seconds: expected a finite number"),
        ({"seed_seconds": -1}, "generation.seed_seconds: must be > 0"),
        ({"variations": 0}, "generation.variations: must be >= 1"),
        ({"top_p": 1.5}, "generation.top_p: must be <= 1"),
        ({"random_seed": -2}, "generation.random_seed: must be >= 0"),
        ({"temperature": "1:x"}, "generation.temperature: '1:x'"),
        ({"temperature": -1}, "generation.temperature: '-1'"),
        ({"inject": "periodic:0"}, "generation.inject: 'periodic:0'"),
        ({"seed": "pink"}, "generation.seed: unknown seed 'pink'"),
        ({"loudness": 3}, "generation.loudness: unknown setting"),
    ],
)
def test_generation_config_errors_name_the_setting(overrides, fragment):
    with pytest.raises(ConfigError, match=fragment.replace(".", r"\.")):
        GenerationConfig().with_overrides(overrides)


def test_generation_config_takes_python_values():
    from noizenet.config import parse_seed
    from noizenet.sampling import Injection

    cfg = GenerationConfig().with_overrides(
        {"temperature": 0.5, "inject": None, "seed": parse_seed("song:/a b/c@d.wav@2.5")}
    )
    assert cfg.temperature == "0.5" and cfg.inject == "none"
    assert parse_seed(cfg.seed) == parse_seed("song:/a b/c@d.wav@2.5")
    stall = Injection.parse("stall:220:0.02:1.0")
    assert Injection.parse(GenerationConfig().with_overrides({"inject": stall}).inject) == stall


def test_the_cli_names_flags_not_settings():
    names = {"generation.seconds": "--gen-seconds", "generation.top_p": "--top-p"}
    assert flag_message("generation.seconds: must be > 0", names) == "--gen-seconds: must be > 0"
    assert flag_message("generation.top_p: x; see generation.inject", names) == (
        "--top-p: x; see generation.inject"
    )


def test_old_seed_spelling_warns_in_one_line_and_still_works(tmp_path, capsys):
    """train/demo/experiment --seed N: the random seed for one more release, said once."""
    parser = build_parser()
    for argv, dest in (
        (["train", "--seed", "7"], "seed"),
        (["demo", "--seed", "7"], "random_seed"),
        (["experiment", "run", "x", "--seed", "7"], "random_seed"),
        (["data", "inspect", "embedded", "--seed", "7"], "seed"),
    ):
        args = parser.parse_args(argv)
        assert getattr(args, dest) == 7, argv
        err = capsys.readouterr().err.strip()
        assert "--seed N is deprecated" in err and "--random-seed 7" in err and "\n" not in err
    args = parser.parse_args(["train", "--random-seed", "7"])
    assert args.seed == 7 and capsys.readouterr().err == ""
    # the deprecated spelling ends up in the config exactly as --random-seed does
    from noizenet.cli import config_from_args

    assert config_from_args(parser.parse_args(["train", "--seed", "4"])).seed == 4


def test_sampling_flags_are_refused_by_a_regression_run(tiny_run, capsys):
    for flags, name in (
        (["--temperature", "0.8"], "--temperature"),
        (["--top-p", "0.9"], "--top-p"),
    ):
        assert main(["generate", str(tiny_run.path), *flags, "--seconds", "0.1"]) == 2
        err = capsys.readouterr().err.strip()
        assert f"{name}: applies to categorical heads" in err and "\n" not in err
    # the neutral values change nothing, and are accepted
    from noizenet.generate import generate

    assert generate(tiny_run, seconds=0.05, temperature="1", top_p=1.0, write=False)


def test_help_texts_say_what_the_verbs_do(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    assert "mu-law LSTM" in " ".join(capsys.readouterr().out.split())
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "gen_perlin_e10_t1_v0.wav" in text and "gen_perlin_e10_v0.wav" in text


def test_every_flag_with_a_default_shows_it():
    """A flag whose value is not 'unset' says its default in --help (issue 17: demo --out,
    reproduce --seconds and --offset, plot --offset did not)."""
    missing = []
    for verb, flag, action in visible_flags():
        if action.nargs == 0 or action.default is None or action.default is argparse.SUPPRESS:
            continue  # switches, and values the verb fills in itself (their help says which)
        if "(default:" not in action.help:
            missing.append((verb, flag, action.default))
    assert not missing, missing
    help_of = {(v, f): a.help for v, f, a in visible_flags()}
    assert help_of[("noizenet demo", "--epochs")].endswith("(default: 5)")
