"""Progress bars for long loops (tqdm), quiet when output is not a terminal or asked to be."""

from __future__ import annotations

import os
import sys
from typing import Any


def progress_bar(*, disable: bool = False, **kwargs: Any):
    """A tqdm bar on stderr; off with ``disable``, ``NOIZENET_QUIET=1``, or when stderr is not a
    terminal (a log file should hold the per-epoch lines, not thousands of bar redraws)."""
    from tqdm.auto import tqdm

    quiet = disable or os.environ.get("NOIZENET_QUIET") == "1"
    return tqdm(
        disable=True if quiet else None, file=sys.stderr, dynamic_ncols=True, leave=False, **kwargs
    )
