"""A decode worker process: ``python -m noizenet.corpus.decode_worker``.

Reads one task per line on stdin (a JSON list: source path, output ``.npy`` path, relative file
name, sample rate), decodes it into the cache (:func:`noizenet.corpus.cache.decode_task`), and
writes the manifest entry as one JSON line on stdout. It exits when stdin closes.

Why a plain subprocess and not a ``multiprocessing`` pool: spawn and forkserver workers re-import
the caller's main script, so a user's script without an ``if __name__ == "__main__"`` guard
would start training again inside every worker (and wait forever on the cache lock the parent
holds); fork would copy a process that already runs torch's threads. A worker started with
``-m`` imports only this module.
"""

from __future__ import annotations

import json
import os
import sys


def main() -> None:
    # The protocol owns the real stdout; anything a decoder library prints (mpg123 reports
    # damaged MP3 frames on stderr) goes to /dev/null: the reason is returned in the entry.
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.close(devnull)

    from noizenet.corpus import cache

    for line in sys.stdin:
        if not line.strip():
            continue
        source, out, file, sr = json.loads(line)
        entry = cache.decode_task(source, out, file, int(sr))
        protocol.write(json.dumps(entry) + "\n")
        protocol.flush()


if __name__ == "__main__":
    main()
