"""Global batches: which examples train together in each step depends on the seed and the
global batch size alone, never on the number of processes; each process takes its share."""

import pytest
import torch

from rpo_bench.train import TrainConfig
from rpo_bench.train.batches import epoch_order, global_batches, make_batches, schedule, split
from rpo_bench.train.tokenize import Encoded


def examples(n: int) -> list[Encoded]:
    # lengths repeat, so the seed's tie-breaking matters
    return [Encoded(i, [1] * (3 + i % 5), [2] * (1 + i % 3), [3] * 2, margin=1) for i in range(n)]


def step_sets(pairs, batch_size, grad_accum, processes, order="length"):
    """Per step (in epoch 0 and 1 order), the set of example indices over all processes."""
    shares = [
        schedule(pairs, batch_size, grad_accum, processes, rank, 0, seed=3, order=order)[0]
        for rank in range(processes)
    ]
    n = len(shares[0])
    assert all(len(s) == n for s in shares)  # lockstep
    out = []
    for epoch in (0, 1):
        for k in epoch_order(n, 3, epoch):
            ids = [int(i) for s in shares for b in s[k].micro for i in b.index]
            assert len(ids) == len(set(ids)) == shares[0][k].global_size
            out.append(frozenset(ids))
    return out


@pytest.mark.parametrize("order", ["length", "bucketed"])
def test_steps_hold_the_same_examples_for_any_number_of_processes(order):
    pairs = examples(70)  # 8 full global batches of 8 and a last one of 6
    one = step_sets(pairs, batch_size=8, grad_accum=1, processes=1, order=order)
    assert step_sets(pairs, 4, 2, 1, order) == one  # accumulation instead of a larger batch
    assert step_sets(pairs, 4, 1, 2, order) == one  # two processes
    assert step_sets(pairs, 2, 2, 2, order) == one  # both
    # 8 shares per step: the last batch of 6 cannot be shared and is left out (one step
    # fewer, so another epoch order)
    assert set(step_sets(pairs, 1, 2, 4, order)) == {s for s in one if len(s) == 8}
    pairs = examples(72)
    assert step_sets(pairs, 1, 2, 4, order) == step_sets(pairs, 8, 1, 1, order)


def test_one_process_keeps_the_batches_it_had():
    """With one process and no accumulation the steps are make_batches' batches, in the
    same epoch order, the last (smaller) one included."""
    pairs = examples(30)
    steps, left = schedule(pairs, 8, 1, 1, 0, 0, seed=5)
    old = make_batches(pairs, 8, 0, seed=5)
    assert left == 0 and [s.global_size for s in steps] == [8, 8, 8, 6]
    for s, b in zip(steps, old, strict=True):
        assert torch.equal(s.micro[0].index, b.index)
        assert torch.equal(s.micro[0].input_ids, b.input_ids)


def test_a_last_batch_too_small_to_share_is_left_out_and_shares_are_near_equal():
    assert [len(p) for p in split(list(range(7)), 3)] == [3, 2, 2]
    assert split(list(range(2)), 3) is None
    steps, left = schedule(examples(17), 4, 1, 4, 0, 0, seed=0)  # global batch 16, then 1
    assert (len(steps), left) == (1, 1)


def test_bucketed_batches_mix_lengths_across_the_epoch_and_keep_padding_low():
    pairs = examples(160)
    by_length = global_batches(pairs, 8, seed=0, order="length")
    bucketed = global_batches(pairs, 8, seed=0, order="bucketed")
    assert sorted(e.index for b in bucketed for e in b) == list(range(160))

    def spread(batches):
        return sum(max(e.length for e in b) - min(e.length for e in b) for b in batches)

    # sorted: every batch near-uniform; bucketed: sorted only within buckets of 8 batches,
    # so batches are not all the shortest first
    assert spread(by_length) <= spread(bucketed)
    firsts = [min(e.length for e in b) for b in bucketed]
    assert firsts != sorted(firsts)


def test_batch_order_is_checked():
    with pytest.raises(
        ValueError, match="field 'batch_order' must be one of length, bucketed, got 'random'"
    ):
        TrainConfig(batch_order="random")
