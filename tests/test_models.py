"""The embedded model: prepared once from the wheel's GGUF, loaded offline, chat template intact."""

import json

import pytest
import torch

from rpo_bench import models

CHAT = [
    {"role": "system", "content": "You answer briefly."},
    {"role": "user", "content": "Name a colour."},
    {"role": "assistant", "content": "Blue."},
    {"role": "user", "content": "Another one, without commas?"},
]


@pytest.fixture(scope="module")
def loaded(prepared_model_dir):
    return models.load(str(prepared_model_dir))


def test_prepared_folder_is_plain_safetensors(prepared_model_dir):
    names = {p.name for p in prepared_model_dir.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= names
    assert not any(n.endswith((".bin", ".pt", ".gguf")) for n in names)
    config = json.loads((prepared_model_dir / "config.json").read_text())
    assert "quantization_config" not in config
    source = json.loads((prepared_model_dir / "rpo_bench_source.json").read_text())
    assert len(source["gguf_sha256"]) == 64


def test_prepare_is_idempotent(prepared_model_dir):
    before = (prepared_model_dir / "model.safetensors").stat().st_mtime_ns
    assert models.prepare() == prepared_model_dir
    assert (prepared_model_dir / "model.safetensors").stat().st_mtime_ns == before


def test_weights_equal_the_gguf_dequantized(loaded):
    from transformers import AutoModelForCausalLM

    gguf = models._gguf_path(models.EMBEDDED["smollm2-135m"])
    reference = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    ids = loaded.tokenizer.apply_chat_template(
        CHAT, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.no_grad():
        a = loaded.model(**ids).logits
        b = reference(**ids).logits
    assert torch.allclose(a, b, atol=1e-5)


def test_generates_offline_with_chat_template(loaded):
    from rpo_bench.rollout.hf import generate

    replies = generate(loaded.model, loaded.tokenizer, [CHAT, CHAT[:2]], max_new_tokens=16)
    assert len(replies) == 2 and all(r.strip() for r in replies)
    # Batched, left-padded generation matches generating alone.
    assert generate(loaded.model, loaded.tokenizer, [CHAT[:2]], max_new_tokens=16) == [replies[1]]


def test_decode_loop_equals_model_generate_across_prefill_groups(loaded):
    """Seven prompts of different lengths span two prefill groups and finish at different
    steps (rows leave the batch): every greedy reply equals transformers' own generate."""
    from rpo_bench.rollout.hf import PREFILL_ROWS, generate

    questions = [
        "Hi",
        "Name a color.",
        "What is 2+2?",
        "List three fruits.",
        "Write a haiku about the sea.",
        "Explain gravity to a child in one long paragraph about planets, apples and the moon.",
        "Describe Paris briefly.",
    ]
    assert len(questions) > PREFILL_ROWS
    chats = [[{"role": "user", "content": q}] for q in questions]
    ours = generate(loaded.model, loaded.tokenizer, chats, max_new_tokens=20)
    tok = loaded.tokenizer
    for chat, reply in zip(chats, ours, strict=True):
        ids = tok.apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt",
                                      return_dict=True)  # fmt: skip
        out = loaded.model.generate(**ids, max_new_tokens=20, do_sample=False)
        expected = tok.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)
        assert reply == expected


def test_chat_template_round_trips(loaded):
    tok = loaded.tokenizer
    text = tok.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True)
    ids = tok.apply_chat_template(
        CHAT, tokenize=True, add_generation_prompt=True, return_dict=True
    )["input_ids"]
    assert tok.decode(ids) == text
    for message in CHAT:
        assert message["content"] in text
    assert text.endswith("<|im_start|>assistant\n")


def test_unknown_names_give_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown embedded model"):
        models.prepare("gpt-5")
    with pytest.raises(OSError, match="offline"):
        models.load("no-such-org/no-such-model")
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(ValueError, match="folder"):
        models.load(str(tmp_path / "weights.bin"))
    with pytest.raises(OSError, match="not a loadable"):
        models.load(str(tmp_path))
