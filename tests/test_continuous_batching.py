"""Continuous batching (`continuous` engines): a finished row's slot takes the next
waiting (prompt, sample) row of the whole call instead of the batch shrinking.

In float32 its greedy replies must be the reference loop's, with slots refilled, the
cache trimmed on the left and grown on the right; seeded sampling must repeat itself,
through `generate` and through `decode` (lm-eval's entry); prefix reuse must still
carry turn k's keys and values into turn k+1.
"""

from __future__ import annotations

import pytest
import torch
from test_fast_engine import CHATS, QUESTIONS  # the same prompts as the fast engine's tests

from rpo_bench import models
from rpo_bench.rollout import hf, kv
from rpo_bench.rollout.hf import HFBackend
from rpo_bench.rollout.settings import ENGINES, Engine, GenerationSettings, engine

SLOTS = 3  # fewer than the chats: slots must be refilled


@pytest.fixture(scope="module")
def loaded(prepared_model_dir):
    torch.set_num_threads(2)
    return models.load(str(prepared_model_dir))


def backend(loaded, name: str) -> HFBackend:
    return HFBackend(loaded.model, loaded.tokenizer, batch_size=SLOTS, engine=ENGINES[name])


def spy(monkeypatch, owner, name: str, seen):
    """Calls of owner.name, each as `seen(*args)`, while it still runs."""
    calls, original = [], getattr(owner, name)

    def wrapped(*args):
        calls.append(seen(*args))
        return original(*args)

    monkeypatch.setattr(owner, name, wrapped)
    return calls


def test_continuous_float32_gives_the_reference_replies(loaded, monkeypatch):
    greedy = GenerationSettings(max_new_tokens=24)
    expected = backend(loaded, "reference").generate(CHATS, greedy)
    assert backend(loaded, "fast_float32").generate(CHATS, greedy) == expected
    # A small ROOM: the cache grows on the right and drops dead slots on the left often.
    monkeypatch.setattr(kv, "ROOM", 4)
    placed = spy(monkeypatch, hf._Slots, "place", lambda slots, slot, *rest: slot)
    dropped = spy(monkeypatch, kv.ReservedCache, "drop_front", lambda cache, count: count)
    continuous = backend(loaded, "continuous_float32")
    assert continuous.generate(CHATS, greedy) == expected
    assert len(placed) == len(CHATS) and max(placed) == SLOTS - 1 and dropped
    # n = 2 samples kept to the top token (top_p ~ 0): each sample is the greedy reply.
    two = GenerationSettings(temperature=1.0, top_p=1e-9, max_new_tokens=24, n=2)
    placed.clear()
    assert continuous.generate(CHATS, two) == [[r[0], r[0]] for r in expected]
    assert len(placed) == 2 * len(CHATS) and max(placed) == 2 * SLOTS - 1  # batch_size x n


def test_continuous_sampling_repeats_for_a_seed(loaded):
    continuous = backend(loaded, "continuous_float32")
    settings = GenerationSettings(temperature=1.0, max_new_tokens=12, seed=7, n=2)
    first = continuous.generate(CHATS, settings)
    assert continuous.generate(CHATS, settings) == first
    assert all(len(r) == 2 for r in first)
    # lm-eval's entry (`decode` on a padded batch) runs the same queue and slots.
    tok = loaded.tokenizer
    texts = [tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in CHATS]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    tok.padding_side = "left"
    batch = tok(
        [texts[i] for i in order], return_tensors="pt", padding=True, add_special_tokens=False
    )
    generator = torch.Generator().manual_seed(settings.seed)
    with torch.inference_mode():
        new = continuous.decode(batch["input_ids"], batch["attention_mask"], settings, generator)
    texts = tok.batch_decode(new, skip_special_tokens=True)
    assert [texts[2 * j : 2 * j + 2] for j in range(len(order))] == [first[i] for i in order]


def test_continuous_keeps_reusing_prefixes_across_turns(loaded):
    from rpo_bench.rollout.multiturn import Conversation, play

    convs = [Conversation(str(i), [q, "Now say it again in one short sentence."])
             for i, q in enumerate(QUESTIONS[:4])]  # fmt: skip
    settings = GenerationSettings(max_new_tokens=24)
    continuous = backend(loaded, "continuous_float32")
    assert play(continuous, convs, settings) == play(backend(loaded, "reference"), convs, settings)
    store = continuous.prefixes
    # Turn 1 (nothing to reuse) and turn 2 are about half each of the tokens looked up.
    assert store.reused_tokens > 0.4 * store.looked_up_tokens


def test_reserved_cache_places_rows_and_drops_its_front():
    like = [(torch.zeros(2, 1, 3), torch.zeros(2, 1, 3))]
    cache = kv.ReservedCache.blank(2, 4, like)
    assert (cache.length, cache.capacity, cache.layers[0].keys.shape[0]) == (4, 4 + kv.ROOM, 2)
    row = torch.ones(2, 3, 3)
    cache.place(1, [(row, row * 2)])
    layer = cache.layers[0]
    assert layer.keys[1, :, :1].eq(0).all() and layer.keys[1, :, 1:4].eq(1).all()
    assert layer.values[1, :, 1:4].eq(2).all() and layer.keys[0].eq(0).all()
    with pytest.raises(ValueError, match="do not fit"):
        cache.place(0, [(torch.ones(2, 5, 3),) * 2])
    cache.drop_front(1)
    assert (cache.length, cache.capacity) == (3, 3 + kv.ROOM) and layer.keys[1, :, :3].eq(1).all()


def test_continuous_engine_names():
    assert engine("continuous_float32") == Engine(
        "reserved", "float32", reuse_prefix=True, continuous=True
    )
    assert engine("continuous").continuous and engine("continuous").kv_cache == "reserved"
    assert not any(engine(n).continuous for n in ("reference", "inplace_float32", "fast"))
    with pytest.raises(ValueError, match="continuous batching needs"):
        Engine("dynamic", "float32", continuous=True)
