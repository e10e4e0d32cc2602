import pytest

from noizenet.config import WHOLE_SONG, Config, flag_specs
from noizenet.errors import ConfigError


def test_defaults_are_the_papers_headline_table():
    c = Config()
    assert (c.model.cell, c.model.hidden, c.model.layers, c.model.dropout) == ("lstm", 50, 1, 0.5)
    assert (c.train.loss, c.train.optimizer, c.train.lr) == ("mse", "adam", 0.01)
    assert (c.train.clip, c.train.clip_mode) == (1.0, "value")
    assert (c.data.songs, c.data.seconds, c.data.sample_rate) == (5, 15.0, 22050)


def test_toml_round_trip(tmp_path):
    c = Config().with_overrides(
        {
            "model.cell": "gru",
            "train.chunk": WHOLE_SONG,
            "seed": 7,
            "train.lr": 1e-4,
            "train.stateless": False,
        }
    )
    c.save(tmp_path / "c.toml")
    assert Config.load(tmp_path / "c.toml") == c


def test_int_given_for_float_is_accepted():
    assert Config.from_dict({"train": {"lr": 1}}).train.lr == 1


@pytest.mark.parametrize(
    "raw, fragment",
    [
        ({"model": {"hidden": -3}}, "model.hidden: must be >= 1"),
        ({"model": {"cell": "transformer"}}, "unknown value 'transformer'"),
        ({"train": {"lr": 0}}, "train.lr: must be > 0"),
        ({"train": {"chunk": "lots"}}, "train.chunk"),
        ({"train": {"chunk": 1}}, "train.chunk"),
        ({"train": {"epochs": 2.5}}, "expected an integer"),
        ({"model": {"dropout": 1.5}}, "must be <= 0.99"),
        ({"data": {"seconds": float("nan")}}, "finite number"),
        ({"model": {"hiden": 3}}, "unknown setting"),
        ({"modle": {}}, "unknown setting"),
        ({"train": {"stateless": True, "chunk": WHOLE_SONG}}, "stateless"),
        ({"train": {"stateless": "yes"}}, "true or false"),
        ({"train": {"stride": 5, "chunk": WHOLE_SONG}}, "train.stride needs a finite"),
        ({"train": {"stride": -1}}, "train.stride: must be >= 0"),
    ],
)
def test_bad_values_raise_config_error_naming_the_field(raw, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        Config.from_dict(raw)


def test_bad_toml_names_the_file(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("[model\nhidden = 3")
    with pytest.raises(ConfigError, match=r"bad\.toml"):
        Config.load(p)


def test_every_field_has_exactly_one_flag():
    specs = flag_specs()
    flags = [s.flag for s in specs]
    assert len(flags) == len(set(flags))
    dests = {s.dest for s in specs}
    for name in (
        "model.hidden",
        "model.cell",
        "train.chunk",
        "train.stateless",
        "data.source",
        "codec.scaling",
        "seed",
        "train.clip_mode",
    ):
        assert name in dests
