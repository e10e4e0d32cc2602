"""``--preset NAME``: a named group of settings; flags given beside it win."""

from __future__ import annotations

import pytest

from noizenet.cli import build_parser, config_from_args, main
from noizenet.config import PRESETS, Config
from noizenet.errors import ConfigError


def _cli_config(*argv: str) -> Config:
    return config_from_args(build_parser().parse_args(["train", *argv]))


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_is_valid_and_sets_what_it_says(name):
    cfg = Config().with_overrides({"preset": name})
    assert cfg.preset == name
    raw = cfg.to_dict()
    for dotted, value in PRESETS[name].settings.items():
        section, key = dotted.split(".")
        assert raw[section][key] == value, dotted


def test_paper_is_the_defaults_and_mulaw_the_flat_mu_law_lstm():
    paper = _cli_config("--preset", "paper")
    assert paper.preset == "paper"
    assert paper.to_dict() == {**Config().to_dict(), "preset": "paper"}
    mulaw = _cli_config("--preset", "mulaw")
    assert (mulaw.codec.name, mulaw.codec.levels, mulaw.model.cell) == ("mulaw", 256, "lstm")
    assert (mulaw.model.hidden, mulaw.train.lr, mulaw.train.chunk) == (128, 2e-3, 256)
    assert mulaw.model.dropout == 0.0


def test_a_flag_given_beside_the_preset_wins():
    cfg = _cli_config("--preset", "mulaw", "--hidden", "64", "--lr", "0.005")
    assert (cfg.model.hidden, cfg.train.lr) == (64, 0.005)
    assert cfg.codec.name == "mulaw" and cfg.preset == "mulaw"  # the rest of the preset stays
    # the order on the command line does not matter
    assert _cli_config("--hidden", "64", "--preset", "mulaw").model.hidden == 64


def test_the_preset_is_saved_in_config_toml(tmp_path):
    cfg = _cli_config("--preset", "mulaw", "--hidden", "64")
    cfg.save(tmp_path / "config.toml")
    text = (tmp_path / "config.toml").read_text()
    assert 'preset = "mulaw"' in text
    assert Config.load(tmp_path / "config.toml") == cfg
    # a config.toml written before presets existed loads with none
    old = "\n".join(line for line in Config().to_toml().splitlines() if "preset" not in line)
    assert Config.from_toml(old).preset == ""


def test_an_unknown_preset_is_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--preset", "nope"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--preset" in err and "'mulaw'" in err
    with pytest.raises(ConfigError, match=r"preset: unknown preset 'nope' \(choose from paper"):
        Config().with_overrides({"preset": "nope"})
    with pytest.raises(ConfigError, match="preset: unknown value"):
        Config.from_dict({"preset": "nope"})


def test_train_help_lists_the_presets(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = "".join(capsys.readouterr().out.split())  # argparse wraps lines at spaces and hyphens
    for name, preset in PRESETS.items():
        assert "".join(f"{name}: {preset.help}".split()) in out


def test_the_hierarchical_presets_are_samplernn_runs(tmp_path):
    two, three = (_cli_config("--preset", n) for n in ("samplernn", "samplernn-3t"))
    assert (two.model.family, two.model.frame_sizes, two.codec.name) == ("samplernn", "16", "mulaw")
    assert three.model.frame_sizes == "64,16" and three.model.cell == "gru"
    from noizenet.models import config_family

    for cfg in (two, three):
        config_family(cfg.model).check_config(cfg)  # trainable as they stand
    # --model and --cell beside a preset: the family and the frame-tier cell
    assert _cli_config("--preset", "samplernn", "--cell", "lstm").model.cell == "lstm"
    assert _cli_config("--model", "samplernn", "--codec", "mulaw").model.family == "samplernn"


def test_the_default_preset_of_train_is_one_constant(monkeypatch, tmp_path):
    """What ``noizenet train`` runs without --preset: the paper's today; switching it is
    ``DEFAULT_PRESET``, and --preset or a --config file still say otherwise."""
    import noizenet.cli as cli

    default = Config().with_overrides({"preset": cli.DEFAULT_PRESET})
    assert _cli_config().to_dict() == default.to_dict()
    monkeypatch.setattr(cli, "DEFAULT_PRESET", "samplernn")
    assert _cli_config().model.family == "samplernn"
    assert _cli_config("--hidden", "64").model.hidden == 64  # flags still win over it
    assert _cli_config("--preset", "paper").model.family == "flat"
    Config().save(tmp_path / "c.toml")
    assert _cli_config("--config", str(tmp_path / "c.toml")).model.family == "flat"
