"""The fast rollout engine: in-place KV cache and grouped decode attention.

In float32 it must give the reference loop's replies exactly (greedy and seeded
sampling, across a KV growth boundary); in bfloat16 it must leave the caller's model
untouched and be deterministic; through lm-eval (`rpo_fast`) it must log the same
replies as lm-eval's own HF model.
"""

from __future__ import annotations

import lm_eval
import pytest
import torch
from lm_eval.tasks import TaskManager

from rpo_bench import models
from rpo_bench.paths import TASKS_DIR
from rpo_bench.rollout import kv
from rpo_bench.rollout.hf import HFBackend
from rpo_bench.rollout.settings import ENGINES, Engine, GenerationSettings, engine

QUESTIONS = [
    "Hi",
    "Name a color.",
    "List three fruits, one per line.",
    "Write a long story about a dragon who learns to bake bread in a small village.",
    "Explain gravity to a child in one long paragraph about planets, apples and the moon.",
    "Describe Paris briefly.",
]
CHATS = [[{"role": "user", "content": q}] for q in QUESTIONS]


@pytest.fixture(scope="module")
def loaded(prepared_model_dir):
    torch.set_num_threads(2)
    return models.load(str(prepared_model_dir))


def test_inplace_float32_engine_gives_the_reference_replies(loaded):
    # 80 new tokens cross the first growth of the reserved buffer (ROOM slots).
    assert 80 > kv.ROOM
    reference = HFBackend(loaded.model, loaded.tokenizer, batch_size=6)
    fast = HFBackend(
        loaded.model, loaded.tokenizer, batch_size=6, engine=ENGINES["inplace_float32"]
    )
    for settings in (
        GenerationSettings(max_new_tokens=80),
        GenerationSettings(temperature=0.8, top_p=0.9, max_new_tokens=80, seed=3, n=2),
    ):
        expected = reference.generate(CHATS, settings)
        assert fast.generate(CHATS, settings) == expected
        assert max(len(loaded.tokenizer(r)["input_ids"]) for rs in expected for r in rs) > kv.ROOM


def test_reserved_cache_grows_and_selects_rows():
    keys = torch.arange(2 * 3 * 5 * 4, dtype=torch.float32).reshape(2, 3, 5, 4)
    cache = kv.ReservedCache([(keys, keys + 1)], room=2)
    assert (cache.length, cache.capacity) == (5, 7)
    layer = cache.layers[0]
    assert cache.make_room(2) == 0
    step = torch.full((2, 3, 2, 4), -1.0)
    layer.update(step, step)
    assert cache.length == 7 and torch.equal(layer.keys[:, :, :5], keys)
    with pytest.raises(RuntimeError, match="reserve"):
        layer.update(step[:, :, :1], step[:, :, :1])
    assert cache.make_room(1) == 1 + kv.ROOM and cache.capacity == 8 + kv.ROOM
    cache.batch_select_indices(torch.tensor([1]))
    assert torch.equal(layer.keys[0, :, :5], keys[1]) and layer.values.shape[0] == 1


def test_bfloat16_engine_copies_the_model_and_is_deterministic(loaded):
    before = next(loaded.model.parameters()).dtype, loaded.model.config._attn_implementation
    fast = HFBackend(loaded.model, loaded.tokenizer, batch_size=6, engine=ENGINES["fast"])
    assert next(fast.model.parameters()).dtype == torch.bfloat16
    assert fast.model.config._attn_implementation == kv.ATTENTION
    after = next(loaded.model.parameters()).dtype, loaded.model.config._attn_implementation
    assert after == before == (torch.float32, before[1]) and before[1] != kv.ATTENTION
    settings = GenerationSettings(temperature=1.0, max_new_tokens=24, seed=5, n=2)
    first = fast.generate(CHATS, settings)
    assert fast.generate(CHATS, settings) == first
    assert all(len(r) == 2 for r in first)


def test_engine_names_and_errors():
    assert engine("reference") == Engine("dynamic", "float32")
    assert engine("inplace_float32") == Engine("reserved", "float32")
    assert engine("fast_float32") == Engine("reserved", "float32", reuse_prefix=True)
    assert engine("fast").kv_cache == "reserved"
    with pytest.raises(ValueError, match="choose one of"):
        engine("turbo")
    with pytest.raises(ValueError, match="kv_cache must be"):
        Engine("paged", "float32")


def test_lm_eval_rpo_fast_logs_the_hf_models_replies(prepared_model_dir):
    """`rpo_fast` (in-place float32 engine) and `hf`: the same replies, the same scores."""
    from rpo_bench.rollout import lm_eval_model

    outputs = {}
    for name, args in (("hf", {}), (lm_eval_model.NAME, {"engine": "inplace_float32"})):
        out = lm_eval.simple_evaluate(
            model=name,
            model_args={"pretrained": str(prepared_model_dir), "dtype": "float32", **args},
            tasks=["ifeval_local"],
            device="cpu",
            task_manager=TaskManager(include_path=str(TASKS_DIR)),
            apply_chat_template=True,
            limit=3,
            batch_size=3,
            gen_kwargs={"max_gen_toks": 48},
            log_samples=True,
            random_seed=0,
        )
        outputs[name] = out
    hf, fast = (outputs[n]["samples"]["ifeval_local"] for n in ("hf", lm_eval_model.NAME))
    assert [s["resps"] for s in fast] == [s["resps"] for s in hf]
    assert all(s["resps"][0][0].strip() for s in hf)
    assert outputs["hf"]["results"] == outputs[lm_eval_model.NAME]["results"]


def test_reused_prefix_gives_the_fresh_prefill(loaded):
    """Turn 2 started from turn 1's remembered keys and values: the same next-token logits
    as prefilling it from scratch, and the same greedy conversation (float32)."""
    from rpo_bench.rollout.multiturn import Conversation, play

    convs = [Conversation(str(i), [q, "Now say it again in one short sentence."])
             for i, q in enumerate(QUESTIONS[:4])]  # fmt: skip
    settings = GenerationSettings(max_new_tokens=40)
    plain = HFBackend(loaded.model, loaded.tokenizer, engine=ENGINES["inplace_float32"])
    reusing = HFBackend(loaded.model, loaded.tokenizer, engine=ENGINES["fast_float32"])
    assert play(reusing, convs, settings) == play(plain, convs, settings)
    store = reusing.prefixes
    assert store.reused_tokens > 0.5 * store.looked_up_tokens  # most of turn 2 was reused
    # Logits of the turn-2 prompts: reused prefix vs a fresh prefill.
    history = play(plain, convs, settings)
    tok = loaded.tokenizer
    prompts = [
        tok.apply_chat_template(
            [{"role": "user", "content": c.turns[0]}, {"role": "assistant", "content": h[0][0]},
             {"role": "user", "content": c.turns[1]}],
            add_generation_prompt=True, return_dict=True,
        )["input_ids"]
        for c, h in zip(convs, history, strict=True)
    ]  # fmt: skip
    with torch.inference_mode():
        fresh = plain._prefill(prompts)
        before = store.reused_tokens
        reused = reusing._prefill(prompts)
    assert store.reused_tokens > before
    torch.testing.assert_close(reused[0], fresh[0], atol=2e-4, rtol=1e-4)
    assert torch.equal(reused[3], fresh[3])  # last positions
