"""SFT and KTO in the compact trainer: the losses by hand, the examples' reading and KL
pairing, and short runs on the embedded model (TRL parity: test_train_parity.py)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from rpo_bench import models
from rpo_bench.train import KtoLogps, TrainConfig, kto_loss, sft_loss, train
from rpo_bench.train.batches import collate_shared
from rpo_bench.train.logps import SequenceScorer
from rpo_bench.train.tokenize import Encoded, encode
from rpo_bench.train.unpaired import file_kind, mismatched, read_single, tokenize_single

USER = [{"role": "user", "content": "List two fruits."}]


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def _rows(kind: str, n: int = 6) -> list[dict]:
    rows = []
    for i in range(n):
        row = {"id": f"e{i}", "kind": kind, "response": "apple, pear" + ", fig" * (i % 3),
               "prompt": [{"role": "user", "content": f"List {i + 2} fruits."}]}  # fmt: skip
        if kind == "kto":
            row["desirable"] = i % 2 == 0
        rows.append(row)
    return rows


def _write(path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_sft_loss_by_hand():
    # two responses of 3 and 2 tokens, summed log-probs -6 and -4: mean NLL 10 / 5 tokens
    loss, metrics = sft_loss(torch.tensor([-6.0, -4.0]), torch.tensor([3, 2]))
    assert loss.item() == pytest.approx(2.0) and metrics["loss"] == pytest.approx(2.0)


def test_sft_loss_is_the_response_tokens_mean_nll_on_the_model(prepared_model_dir):
    """From the full logits by hand: only response positions count, the prompt is masked."""
    loaded = models.load(str(prepared_model_dir))
    tok, model = loaded.tokenizer, loaded.model
    encoded = [
        Encoded(i, *encode(tok, USER, reply), [], 0)
        for i, reply in enumerate(["apple and pear", "fig"])
    ]
    batch = collate_shared(encoded, tok.pad_token_id)  # SFT: the second reply is empty
    with torch.no_grad():
        logps = SequenceScorer(model)(**batch.inputs("cpu"))
        loss, _ = sft_loss(*(x.chunk(2)[0] for x in (logps, batch.reply_tokens)))
        nll, count = 0.0, 0
        for e in encoded:
            ids = torch.tensor([e.prompt_ids + e.chosen_ids])
            logp = model(ids).logits[0, :-1].log_softmax(-1)
            targets = ids[0, 1:]
            for t in range(len(e.prompt_ids) - 1, ids.shape[1] - 1):  # predicts a reply token
                nll -= logp[t, targets[t]].item()
                count += 1
    assert count == sum(len(e.chosen_ids) for e in encoded) == int(batch.reply_tokens.sum())
    assert loss.item() == pytest.approx(nll / count, abs=1e-4)


def test_kto_loss_by_hand():
    t = torch.tensor
    # log-ratios r = 2 (desirable) and -1 (undesirable); mismatched log-ratios 1 and 2: z0 = 1.5
    logps = KtoLogps(t([-10.0, -20.0]), t([-15.0, -14.0]), t([-12.0, -19.0]), t([-16.0, -16.0]))
    labels = t([True, False])
    good, bad = 1 - sigmoid(0.1 * (2 - 1.5)), 1 - sigmoid(0.1 * (1.5 + 1))
    loss, metrics = kto_loss(logps, labels, beta=0.1)
    assert loss.item() == pytest.approx((good + bad) / 2, abs=1e-6)
    assert metrics["kl"] == pytest.approx(1.5) and metrics["rewards/margins"] == pytest.approx(0.3)
    weighted, _ = kto_loss(logps, labels, 0.1, desirable_weight=2.0, undesirable_weight=0.5)
    assert weighted.item() == pytest.approx((2 * good + 0.5 * bad) / 2, abs=1e-6)
    # a negative KL estimate is clamped to 0, and the estimate carries no gradient
    kl = t([-18.0, -17.0], requires_grad=True)
    loss, metrics = kto_loss(KtoLogps(t([-10.0, -20.0]), kl, t([-12.0, -19.0]),
                                      t([-16.0, -16.0])), labels, beta=0.1)  # fmt: skip
    assert metrics["kl"] == 0.0
    assert loss.item() == pytest.approx((1 - sigmoid(0.2) + 1 - sigmoid(0.1)) / 2, abs=1e-6)
    assert not loss.requires_grad


def test_mismatched_replies_rotate_within_the_batch():
    batch = [Encoded(i, [1] * (i + 1), [10 * i, 10 * i + 1], [], 0) for i in range(3)]
    paired = mismatched(batch, max_length=4)
    # (x_0, y_2), (x_1, y_0), (x_2, y_1); x_2 has 3 prompt tokens: y_1 is cut to 1 token
    assert [e.rejected_ids for e in paired] == [[20, 21], [0, 1], [10]]
    assert [e.chosen_ids for e in paired] == [e.chosen_ids for e in batch]
    assert mismatched(batch[:1], 8)[0].rejected_ids == batch[0].chosen_ids


def test_bad_examples_name_file_line_and_field(tmp_path, prepared_model_dir):
    rows = _rows("kto", 3)
    rows[1]["desirable"] = "yes"
    with pytest.raises(ValueError, match=r"k\.jsonl:2: field 'desirable' must be true or false"):
        read_single(_write(tmp_path / "k.jsonl", rows), "kto")
    rows = _rows("sft", 2)
    del rows[1]["response"]
    with pytest.raises(ValueError, match=r"s\.jsonl:2: field 'response' is missing"):
        read_single(_write(tmp_path / "s.jsonl", rows), "sft")
    mixed = _write(tmp_path / "m.jsonl", [*_rows("sft", 1), *_rows("kto", 1)])
    assert file_kind(mixed) == "sft"
    with pytest.raises(ValueError, match=r"m\.jsonl:2: field 'kind' must be 'sft'"):
        read_single(mixed, "sft")
    sft = _write(tmp_path / "sft.jsonl", _rows("sft", 2))
    with pytest.raises(ValueError, match=r"holds sft examples, but loss 'rpo' trains on pref"):
        train(sft, TrainConfig(out=str(tmp_path / "x"), loss="rpo"), quiet=True)
    with pytest.raises(ValueError, match="field 'batch_size' must be >= 2 for loss kto, got 1"):
        TrainConfig(loss="kto", batch_size=1)
    tok = models.load(str(prepared_model_dir)).tokenizer
    tokenized = tokenize_single(read_single(sft, "sft"), tok, max_length=64)
    assert [e.desirable for e in tokenized.pairs] == [None, None] and not tokenized.dropped
    assert tok.decode(tokenized.pairs[0].chosen_ids) == "apple, pear<|im_end|>\n"


@pytest.mark.parametrize("loss", ["sft", "kto"])
def test_short_lora_run(tmp_path, monkeypatch, loss):
    torch.set_num_threads(1)
    if loss == "sft":  # the SFT loss needs no reference log-probs: none are computed

        def no_reference(*args):
            raise AssertionError("reference pass for SFT")

        monkeypatch.setattr("rpo_bench.train.trainer.reference_logps", no_reference)
    path = _write(tmp_path / "pairs.jsonl", _rows(loss, 6))
    cfg = TrainConfig(out=str(tmp_path / loss), loss=loss, batch_size=3, max_length=64,
                      lora={"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]},
                      lr=1e-3, warmup_ratio=0.0)  # fmt: skip
    result = train(path, cfg, quiet=True)
    assert result.steps == 2 and result.pairs == 6 and (tmp_path / loss / "final").is_dir()
    assert all(math.isfinite(r["loss"]) for r in result.log)
    if loss == "kto":
        assert {"kl", "rewards/chosen", "rewards/rejected"} & set(result.log[0])
