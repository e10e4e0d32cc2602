"""The top-level Python API stays callable after its subpackages are imported (issue 17's
notebook calls ``noizenet.train`` and ``noizenet.generate`` more than once)."""

from __future__ import annotations

import types

import pytest

from noizenet.errors import NoizeNetError


def test_train_generate_demo_stay_callable_once_their_subpackages_load(tmp_path):
    import noizenet.demo
    import noizenet.generate
    import noizenet.train.trainer as trainer  # the modules are still reachable as modules

    assert isinstance(noizenet.train, types.ModuleType) and trainer.__name__.endswith("trainer")
    for name in ("train", "generate", "demo"):
        assert callable(getattr(noizenet, name)), name
    with pytest.raises(NoizeNetError, match="missing"):
        noizenet.generate(tmp_path / "missing")
    with pytest.raises(NoizeNetError, match="seconds"):
        noizenet.demo(tmp_path / "demo", seconds=-1)
    with pytest.raises(NoizeNetError):
        noizenet.train(None, tmp_path / "nothing", resume=True)
