import numpy as np
import pytest

from noizenet.train.streams import Streams


def _songs():
    return [np.arange(1000, 1000 + n, dtype=np.float32) for n in (50, 33, 70)]


def _covered(streams, epoch=0, **kw):
    """Every (input, target) pair the epoch trains on, from the batches' unpadded positions."""
    pairs = []
    for batch in streams.epoch(epoch, seed=3, **kw):
        x, y = batch.x[..., 0], batch.y[..., 0]
        pairs += list(zip(x[batch.mask].tolist(), y[batch.mask].tolist(), strict=True))
    return pairs


@pytest.mark.parametrize(
    "batch, chunk, stateless", [(1, None, False), (4, 8, False), (3, 16, True), (16, 5, False)]
)
def test_every_next_sample_pair_is_trained_exactly_once(batch, chunk, stateless):
    songs = _songs()
    pairs = _covered(Streams(songs, batch=batch, chunk=chunk, stateless=stateless))
    expected = [(float(s[i]), float(s[i + 1])) for s in songs for i in range(len(s) - 1)]
    assert sorted(pairs) == sorted(expected)


def test_targets_are_next_samples_and_never_cross_songs():
    for batch in Streams(_songs(), batch=4, chunk=8).epoch(0, seed=0):
        x, y = batch.x[..., 0], batch.y[..., 0]
        assert np.all((y - x)[batch.mask] == 1)


def test_state_resets_exactly_where_a_song_starts_or_a_stream_begins():
    songs = _songs()
    firsts = {float(s[0]) for s in songs}
    for batch in Streams(songs, batch=3, chunk=10).epoch(1, seed=0):
        starts_song = np.array([batch.mask[b, 0] and batch.x[b, 0, 0] in firsts for b in range(3)])
        assert np.all(batch.reset[starts_song])
        if batch.step > 0:
            active = batch.mask[:, 0]
            assert not np.any(batch.reset[active & ~starts_song])


def test_whole_song_single_stream_is_the_papers_one_batch_mode():
    batches = list(Streams(_songs(), batch=1, chunk=None).epoch(0, seed=0))
    assert len(batches) == 3 and all(b.reset.all() for b in batches)
    assert sorted(b.samples for b in batches) == [32, 49, 69]


def test_plan_is_deterministic_and_changes_per_epoch():
    s = Streams(_songs(), batch=2, chunk=8)
    a = [b.x.copy() for b in s.epoch(0, seed=1)]
    b = [b.x.copy() for b in s.epoch(0, seed=1)]
    c = [b.x.copy() for b in s.epoch(1, seed=1)]
    assert all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))
    assert not all(p.shape == q.shape and np.array_equal(p, q) for p, q in zip(a, c, strict=False))


def test_resume_from_a_step_and_rank_sharding_partition_the_epoch():
    s = Streams(_songs(), batch=4, chunk=8)
    full = list(s.epoch(0, seed=0))
    tail = list(s.epoch(0, seed=0, start_step=2))
    assert [b.step for b in tail] == [b.step for b in full[2:]]
    assert np.array_equal(tail[0].x, full[2].x)
    pairs = sorted(_covered(s, rank=0, world=2) + _covered(s, rank=1, world=2))
    assert pairs == sorted(_covered(s))


@pytest.mark.parametrize("stride", [3, 8, 20])
def test_stride_sets_where_chunks_start_the_papers_step_size(stride):
    songs = [np.arange(k * 1000, k * 1000 + n, dtype=np.float32) for k, n in enumerate((50, 33))]
    s = Streams(songs, batch=2, chunk=8, stride=stride)
    for song in songs:  # chunk starts, relative to the song; each chunk is L (or to the end)
        starts = []
        for batch in s.epoch(0, seed=0):
            x = batch.x[..., 0]
            for b in np.flatnonzero(batch.mask[:, 0]):
                if song[0] <= x[b, 0] <= song[-1]:
                    row = x[b, batch.mask[b]]
                    assert np.array_equal(row, np.arange(row[0], min(row[0] + 8, song[-1])))
                    starts.append(int(row[0] - song[0]))
        assert sorted(starts) == list(range(0, len(song) - 1, stride))
    # trained pairs: every pair of a chunk, overlaps counted again, skipped samples not at all
    assert s.samples_per_epoch() == len(_covered(s))
    if stride == 8:
        assert sorted(_covered(s)) == sorted(_covered(Streams(songs, batch=2, chunk=8)))


@pytest.mark.parametrize("world, stateless", [(2, False), (4, False), (2, True)])
def test_ranks_share_each_step_and_know_the_whole_batchs_sample_count(world, stateless):
    """Each rank's streams are disjoint; together they are the batch of one process, and every
    rank knows that batch's sample count (its loss is normalised by it)."""
    s = Streams(_songs(), batch=4, chunk=8, stateless=stateless)
    whole = list(s.epoch(0, seed=5))
    ranks = [list(s.epoch(0, seed=5, rank=r, world=world)) for r in range(world)]
    for step, batch in enumerate(whole):
        parts = [rank[step] for rank in ranks]
        assert sum(p.samples for p in parts) == batch.samples
        assert all(p.total_samples == batch.samples == batch.total_samples for p in parts)
        for r, p in enumerate(parts):
            assert np.array_equal(p.x, batch.x[r::world, : p.x.shape[1]])
    with pytest.raises(ValueError, match="cannot be shared evenly by 3 ranks"):
        next(s.epoch(0, seed=0, rank=0, world=3))
