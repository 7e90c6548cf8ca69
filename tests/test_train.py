"""The trainer on the embedded model: masking, truncation, resume, bad input, NaN, LoRA ref."""

from __future__ import annotations

import argparse
import json
import math

import pytest
import torch
from safetensors.torch import load_file

from rpo_bench import models
from rpo_bench.train import NonFiniteLossError, TrainConfig, train
from rpo_bench.train.batches import collate
from rpo_bench.train.examples import _check, read_pairs
from rpo_bench.train.launch import add_parser
from rpo_bench.train.logps import SequenceScorer
from rpo_bench.train.tokenize import Encoded, encode, tokenize_pairs
from rpo_bench.train.trainer import reference_logps

SYSTEM = {"role": "system", "content": "Be brief."}


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _pairs(n: int = 8) -> list[dict]:
    rows = []
    for i in range(n):
        history = [{"role": "user", "content": "Hi."}, {"role": "assistant", "content": "Hello."}]
        prompt = [SYSTEM, *history[: 2 * (i % 2)], {"role": "user", "content": f"List {i} fruits."}]
        rows.append(
            {"id": f"p{i}", "prompt": prompt, "chosen": "apple, pear" + ", fig" * (i % 3),
             "rejected": "I like CARS.", "margin": i % 4}
        )  # fmt: skip
    return rows


def _write(path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _cfg(tmp_path, name: str, **kw) -> TrainConfig:
    base = dict(out=str(tmp_path / name), batch_size=2, max_length=64, warmup_ratio=0.25,
                lora={"r": 4, "alpha": 8, "dropout": 0.1,
                      "target_modules": ["q_proj", "v_proj"]})  # fmt: skip
    return TrainConfig(**{**base, **kw})


def test_config_yaml_rejects_unknown_keys(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("loss: rpo\nbeta: 0.2\nlearning_rate: 1e-4\n")
    with pytest.raises(
        ValueError, match=r"c\.yaml:3: field 'learning_rate' is an unknown key; valid keys:.*lr"
    ):
        TrainConfig.from_yaml(path)
    path.write_text("lora:\n  rank: 8\n")
    with pytest.raises(
        ValueError, match=r"c\.yaml:2: field 'lora\.rank' is an unknown key; valid keys: r, alpha"
    ):
        TrainConfig.from_yaml(path)
    for name in ("rpo_lora", "dpo_lora"):
        cfg = TrainConfig.from_yaml(f"configs/train/{name}.yaml")
        assert (cfg.lora.r, cfg.lora.alpha, cfg.beta, cfg.lr) == (8, 16, 0.1, 5e-4)
        assert (cfg.gamma, cfg.warmup_ratio, cfg.loss) == (0.05, 0.1, name[:3])


def test_only_the_final_reply_is_scored(prepared_model_dir):
    loaded = models.load(str(prepared_model_dir))
    tok = loaded.tokenizer
    prompt = [SYSTEM, {"role": "user", "content": "Name a colour."},
              {"role": "assistant", "content": "Blue."},
              {"role": "user", "content": "Two fruits?"}]  # fmt: skip
    p, c, r = encode(tok, prompt, "apple and pear", "no")
    batch = collate([Encoded(0, p, c, r, margin=1)], tok.pad_token_id)
    scored = batch.input_ids[0][batch.reply_mask[0].bool()]
    assert tok.decode(scored) == "apple and pear<|im_end|>\n"
    assert tok.decode(batch.input_ids[1][batch.reply_mask[1].bool()]) == "no<|im_end|>\n"
    assert "Blue." in tok.decode(batch.input_ids[0]) and "Blue." not in tok.decode(scored)
    # the scorer's sum equals log-softmax of the full logits at exactly those positions
    with torch.no_grad():
        ours = SequenceScorer(loaded.model)(batch.input_ids, batch.attention_mask, batch.reply_mask)
        logp = loaded.model(batch.input_ids[:1]).logits[0, :-1].log_softmax(-1)
        at = batch.reply_mask[0, 1:].bool()
        by_hand = logp[at].gather(-1, batch.input_ids[0, 1:][at][:, None]).sum()
    assert ours[0].item() == pytest.approx(by_hand.item(), abs=1e-3)


def test_bad_input_names_file_line_and_field(tmp_path, prepared_model_dir):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(ValueError, match="empty.jsonl: no preference pairs"):
        read_pairs(empty)
    rows = _pairs(3)
    del rows[1]["rejected"]
    with pytest.raises(ValueError, match=r"bad\.jsonl:2: field 'rejected' is missing"):
        read_pairs(_write(tmp_path / "bad.jsonl", rows))
    rows = _pairs(2)
    rows[1]["margin"] = "3"
    with pytest.raises(ValueError, match=r"m\.jsonl:2: field 'margin' must be an integer"):
        read_pairs(_write(tmp_path / "m.jsonl", rows))
    rows = _pairs(2)
    rows[0]["prompt"][-1]["role"] = "assistant"
    with pytest.raises(ValueError, match=r"r\.jsonl:1: field 'prompt' must end with a user"):
        read_pairs(_write(tmp_path / "r.jsonl", rows))


def test_long_prompt_loses_oldest_messages_never_the_reply(prepared_model_dir):
    tok = models.load(str(prepared_model_dir)).tokenizer
    history = []
    for i in range(6):
        history += [{"role": "user", "content": f"old question {i} " + "word " * 10},
                    {"role": "assistant", "content": f"old answer {i}"}]  # fmt: skip
    row = {"id": "x", "prompt": [SYSTEM, *history, {"role": "user", "content": "LAST ASK"}],
           "chosen": "a fine reply", "rejected": "bad", "margin": 1}  # fmt: skip
    short = {**row, "id": "y", "prompt": [SYSTEM, {"role": "user", "content": "LAST ASK"}]}
    pairs = [_check(row, "t:1"), _check(short, "t:2")]
    out = tokenize_pairs(pairs, tok, max_length=96)
    assert (out.truncated, out.dropped) == (1, 0)
    long_e, short_e = out.pairs
    assert long_e.truncated and not short_e.truncated
    assert len(long_e.prompt_ids) + len(long_e.chosen_ids) <= 96
    assert tok.decode(long_e.chosen_ids) == "a fine reply<|im_end|>\n"  # the reply is intact
    text = tok.decode(long_e.prompt_ids)
    assert "LAST ASK" in text and "Be brief." in text  # whole old messages went first
    assert "old question 0" not in text and "old answer 5" in text


def test_constraints_are_never_cut_a_pair_too_long_is_dropped(prepared_model_dir):
    """The system message and the last user message hold the turn's constraints (an `rpo`
    pair's reversed ones among them): a pair that does not fit without its earlier turns is
    dropped and counted, never cut inside them."""
    tok = models.load(str(prepared_model_dir)).tokenizer
    reversed_ = "Do not use any commas in your reply; end it with the exact phrase NO MORE."
    ask = {"role": "user", "content": "Describe a lake. " + reversed_}
    old = [{"role": "user", "content": "old question " + "word " * 30},
           {"role": "assistant", "content": "old answer"}]  # fmt: skip
    row = {"prompt": [SYSTEM, *old, ask], "chosen": "A calm lake", "rejected": "A lake, calm",
           "margin": 2, "reversed": [0]}  # fmt: skip
    rows = [{"id": f"t:{k}/0>1", **row} for k in range(2)]
    pairs = [_check(r, f"t:{k}") for k, r in enumerate(rows)]
    alone = len(encode(tok, [SYSTEM, ask], "A calm lake", "A lake, calm")[0])
    reply = max(len(r) for r in encode(tok, [SYSTEM, ask], "A calm lake", "A lake, calm")[1:])
    fits = tokenize_pairs(pairs, tok, max_length=alone + reply)  # only without the old turn
    assert (fits.truncated, fits.dropped) == (2, 0)
    assert all(reversed_ in tok.decode(e.prompt_ids) for e in fits.pairs)
    assert all("Be brief." in tok.decode(e.prompt_ids) for e in fits.pairs)
    shorter = {**rows[0], "prompt": [SYSTEM, {"role": "user", "content": reversed_}]}
    one_short = tokenize_pairs([*pairs, _check(shorter, "t:9")], tok, max_length=alone + reply - 1)
    assert (len(one_short.pairs), one_short.dropped) == (1, 2)  # the shorter ask fits
    with pytest.raises(ValueError, match="even without its earlier turns"):
        tokenize_pairs(pairs, tok, max_length=alone + reply - 1)


def test_resume_equals_uninterrupted_run(tmp_path):
    pairs = _write(tmp_path / "pairs.jsonl", _pairs(8))
    whole = train(pairs, _cfg(tmp_path, "whole"), quiet=True)
    assert whole.steps == 4 and len(whole.log) == 4
    assert set(whole.log[0]) >= {"loss", "rewards/margins", "rewards/accuracies", "tokens_per_s"}
    first = train(pairs, _cfg(tmp_path, "parts", max_steps=2), quiet=True)
    assert first.steps == 2 and (tmp_path / "parts/checkpoints/step-000002").is_dir()
    resumed = train(pairs, _cfg(tmp_path, "parts"), resume=True, quiet=True)
    assert resumed.steps == 4
    losses = [r["loss"] for r in json.loads("[" + ",".join(
        (tmp_path / "parts/log.jsonl").read_text().split("\n")[:-1]) + "]")]  # fmt: skip
    assert losses == pytest.approx([r["loss"] for r in whole.log], abs=1e-6)
    a = load_file(tmp_path / "whole/final/model.safetensors")
    b = load_file(tmp_path / "parts/final/model.safetensors")
    base = load_file(models.resolve("smollm2-135m") + "/model.safetensors")
    assert not torch.equal(a["model.layers.0.self_attn.q_proj.weight"],
                           base["model.layers.0.self_attn.q_proj.weight"])  # fmt: skip
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=0)
    # the merged model loads for evaluation
    assert models.load(str(tmp_path / "whole/final")).model.config.model_type == "llama"


def test_nan_loss_names_the_step_and_keeps_the_checkpoint(tmp_path):
    pairs = _write(tmp_path / "pairs.jsonl", _pairs(4))
    # an absurd lr makes the adapters ~1e37 after step 1; the MLP's gate*up then overflows
    lora = {"r": 4, "alpha": 8, "target_modules": "all-linear"}
    cfg = _cfg(tmp_path, "nan", lr=1e37, warmup_ratio=0.0, save_every=1, max_grad_norm=None,
               lora=lora)  # fmt: skip
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at step 2 .*step-000001"):
        train(pairs, cfg, quiet=True)
    assert (tmp_path / "nan/checkpoints/step-000001/weights.safetensors").exists()
    assert not (tmp_path / "nan/final").exists()


def test_train_after_another_accelerator_in_the_process(tmp_path):
    """lm-eval's HFLM (and a previous train()) leave accelerate's process-wide state set."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    pairs = _write(tmp_path / "pairs.jsonl", _pairs(2))
    AcceleratorState._reset_state(reset_partial_state=True)  # earlier tests' train() set it
    Accelerator(cpu=True, mixed_precision="no")
    for bf16 in (True, False):
        result = train(pairs, _cfg(tmp_path, f"bf16_{bf16}", bf16=bf16, max_steps=1), quiet=True)
        assert result.steps == 1
        assert AcceleratorState().mixed_precision == ("bf16" if bf16 else "no")


def test_lora_reference_is_the_base_with_adapters_disabled(prepared_model_dir):
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from peft import LoraConfig, get_peft_model

    loaded = models.load(str(prepared_model_dir))
    tok = loaded.tokenizer
    rows = [_check(r, "t") for r in _pairs(2)]
    batches = [collate(tokenize_pairs(rows, tok, 64).pairs, tok.pad_token_id)]
    with torch.no_grad():
        base = SequenceScorer(loaded.model)(
            batches[0].input_ids, batches[0].attention_mask, batches[0].reply_mask
        )
    peft = get_peft_model(loaded.model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, p in peft.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)  # a trained adapter
    scorer = SequenceScorer(peft)
    # float32 like `base`: accelerate's state is process-wide, and earlier train() calls
    # may have set bf16 autocast (the CPU default where bfloat16 is native).
    AcceleratorState._reset_state(reset_partial_state=True)
    ref = reference_logps(scorer, batches, 2, Accelerator(cpu=True, mixed_precision="no"))
    torch.testing.assert_close(ref.T.flatten(), base.flatten()[[0, 1, 2, 3]], atol=1e-4, rtol=0)
    with torch.no_grad():
        adapted = scorer(batches[0].input_ids, batches[0].attention_mask, batches[0].reply_mask)
    assert (adapted - base).abs().max() > 1e-2


def test_cli_parser():
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["train", "--pairs", "p.jsonl", "--out", "runs/x", "--resume"])
    assert (args.pairs, args.out, args.resume, args.model) == ("p.jsonl", "runs/x", True, None)


def test_validation_split_is_held_out_and_logged_every_epoch(tmp_path):
    pairs = _write(tmp_path / "pairs.jsonl", _pairs(10))
    result = train(pairs, _cfg(tmp_path, "val", val_fraction=0.2, epochs=2), quiet=True)
    steps = [r for r in result.log if "loss" in r]
    checks = [r for r in result.log if "val_loss" in r]
    assert len(steps) == 2 * 4 == result.steps  # 8 training pairs, batch 2, 2 epochs
    assert [r["step"] for r in checks] == [4, 8]  # after each epoch
    for r in checks:
        assert math.isfinite(r["val_loss"]) and 0 <= r["val_rewards/accuracies"] <= 1
    # the same seed holds out the same examples, never trained on
    from rpo_bench.train.trainer import _validation_split

    cfg = _cfg(tmp_path, "x", val_fraction=0.2)
    singles = [f"t{k}" for k in range(10)]  # every example its own turn
    kept, held = _validation_split(list(range(10)), singles, cfg, "p")
    assert (len(kept), len(held)) == (8, 2) and not set(kept) & set(held)
    assert _validation_split(list(range(10)), singles, cfg, "p") == (kept, held)
    # a turn's examples (a mirrored pair's two directions) stay on one side
    turns = [f"t{k // 2}" for k in range(10)]
    for seed in range(20):
        kept, held = _validation_split(list(range(10)), turns, _cfg(tmp_path, "x",
                                       val_fraction=0.2, seed=seed), "p")  # fmt: skip
        assert len(held) == 2 and held[0] // 2 == held[1] // 2
    # too large a share is refused, naming the file
    with pytest.raises(ValueError, match=r"pairs.jsonl: val_fraction=0.99 of 10 examples"):
        train(pairs, _cfg(tmp_path, "bad", val_fraction=0.99), quiet=True)
