"""Input-side pairs (IOPO): one response preferred under the prompt it satisfies (its
rewritten prompt) over the prompt it violates (the original). Pairs by hand from verdict
vectors, the pairs-file schema, and the trainer scoring each side under its own prompt."""

import json
import math
import re

import pytest
import torch
from test_pairs import BULLETS, LOWER, NO_COMMA, WORDS, real_turns, row  # noqa: F401
from transformers import AutoTokenizer

from rpo_bench import models
from rpo_bench.data.prompt import render
from rpo_bench.pairs import build_pairs, pair_stats, turn_from_row
from rpo_bench.train.batches import collate, make_batches
from rpo_bench.train.examples import Pair, _check
from rpo_bench.train.logps import SequenceScorer
from rpo_bench.train.loss import PairLogps, preference_loss
from rpo_bench.train.tokenize import tokenize_pairs


def test_iopo_pairs_by_hand():
    # Response 3 repeats response 0's vector (merged); response 4 passes everything.
    turn = turn_from_row(row([(1, 1, 0), (1, 0, 1), (0, 0, 0), (1, 1, 0), (1, 1, 1)]))
    pairs = build_pairs([turn], "iopo")
    assert [(p.chosen, p.rejected, p.margin, p.reversed, p.dropped) for p in pairs] == [
        (0, 0, 1, (2,), ()),
        (1, 1, 1, (1,), ()),
        (2, 2, 3, (0, 1, 2), ()),
    ]
    original = render("Describe the sea.", turn.constraints, "user")
    for p in pairs:
        out = p.to_row()
        assert out["chosen"] == out["rejected"] == f"response {p.chosen}"
        assert (
            out["prompt"]
            == out["chosen_prompt"]
            == render("Describe the sea.", p.constraints, "user")
        )
        assert out["rejected_prompt"] == original != out["prompt"]
        assert out["id"] == f"t0/{p.chosen}>{p.chosen}@original"
    assert "Answer with at most 23 words." in pairs[0].prompt[-1]["content"]
    assert "at least 24 words" in pairs[0].rejected_prompt[-1]["content"]
    # Other strategies' rows are unchanged: no prompt fields beyond `prompt`.
    assert "rejected_prompt" not in build_pairs([turn], "rpo")[0].to_row()


def test_iopo_non_reversible_constraints_and_unanimous_ones():
    # Constraint 0 (bullets) has no reversal: left out of the chosen prompt only.
    turn = turn_from_row(row([(0, 1), (1, 0)], constraints=(BULLETS, NO_COMMA)))
    first, second = build_pairs([turn], "iopo")
    assert (first.reversed, first.dropped, first.margin) == ((), (0,), 1)
    assert "bullet" not in first.prompt[-1]["content"]
    assert "bullet" in first.rejected_prompt[-1]["content"]
    assert (second.reversed, second.dropped, second.margin) == ((1,), (), 1)
    # keep_unanimous=False leaves constraint 2 (failed by both) out of both prompts.
    turn = turn_from_row(row([(1, 0, 0), (0, 1, 0)], constraints=(NO_COMMA, LOWER, WORDS)))
    (p, q) = build_pairs([turn], "iopo", keep_unanimous=False)
    assert p.dropped == (2,) and p.rejected_dropped == (2,) and p.margin == 1
    assert "words" not in p.rejected_prompt[-1]["content"] and q.margin == 1


def test_iopo_pair_noise_by_hand():
    # Judged: response 0 fails constraint 2; truly it passes all three. Its rewritten prompt
    # reverses constraint 2, which it truly fails: a noisy pair, and an inverted one (it
    # truly fails 1 constraint under the chosen prompt and 0 under the original).
    judged, truth = [(1, 1, 0), (0, 0, 0)], [(1, 1, 1), (0, 0, 0)]
    turn = turn_from_row(row(judged, truth=truth))
    stats = pair_stats([turn], build_pairs([turn], "iopo"))
    assert stats["pairs"] == 2 and stats["pair_noise"] == 1 / 2
    assert stats["pair_inversion"] == 1 / 2  # response 1's is not: 0 under its own, 3 original


def test_iopo_rule_invariant_on_real_samples(real_turns):  # noqa: F811
    turns = [turn_from_row(r) for r in real_turns]
    pairs = build_pairs(turns, "iopo")
    assert pairs
    for p in pairs:
        reply = p.turn.responses[p.chosen]
        assert all(c.check(reply) for c in p.constraints)
        shown = [c for k, c in enumerate(p.turn.constraints) if k not in p.rejected_dropped]
        assert sum(not c.check(reply) for c in shown) == p.margin >= 1


ROW = {"id": "a", "prompt": [{"role": "user", "content": "Answer in lowercase."}],
       "chosen": "hello there", "rejected": "hello there", "margin": 1,
       "rejected_prompt": [{"role": "user", "content": "Answer in capital letters."}]}  # fmt: skip


@pytest.mark.parametrize(
    "spoil, message",
    [
        ({"rejected_prompt": []}, "field 'rejected_prompt' must be a non-empty list"),
        ({"rejected_prompt": [{"role": "bot", "content": "x"}]}, "field 'rejected_prompt[0]'"),
        ({"chosen_prompt": [{"role": "user", "content": "other"}]}, "field 'chosen_prompt'"),
        ({"rejected_prompt": None}, "field 'rejected_prompt' must be a non-empty list"),
    ],
)
def test_bad_input_side_rows_name_the_field(spoil, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        _check({**ROW, **spoil}, "pairs.jsonl:3")
    no_rejected = {k: v for k, v in ROW.items() if k != "rejected_prompt"}
    with pytest.raises(ValueError, match="pairs.jsonl:3: field 'rejected_prompt' is missing"):
        _check({**no_rejected, "chosen_prompt": ROW["prompt"]}, "pairs.jsonl:3")


def test_each_side_is_scored_under_its_own_prompt(prepared_model_dir):
    """The rejected row is `rejected_prompt|reply`; its log-prob equals the model's by hand,
    the DPO loss equals the formula, and shared-prompt batching falls back to plain rows."""
    pair = _check({**ROW, "chosen_prompt": ROW["prompt"]}, "pairs.jsonl:1")
    assert pair.rejected_prompt == ROW["rejected_prompt"]
    plain = Pair("b", ROW["prompt"], "hello there", "HELLO THERE", 1)
    tok = AutoTokenizer.from_pretrained(str(prepared_model_dir))
    tokenized = tokenize_pairs([pair, plain], tok, max_length=256)
    side, one = tokenized.pairs
    assert side.rejected_prompt_ids is not None and one.rejected_prompt_ids is None
    batch = collate([side], tok.pad_token_id)
    texts = [tok.decode(batch.input_ids[k][batch.attention_mask[k].bool()]) for k in (0, 1)]
    assert "lowercase" in texts[0] and "capital" in texts[1] and "lowercase" not in texts[1]
    replies = [tok.decode(batch.input_ids[k][batch.reply_mask[k].bool()]) for k in (0, 1)]
    assert replies == ["hello there<|im_end|>\n"] * 2
    model = models.load(str(prepared_model_dir)).model.eval()
    with torch.no_grad():
        ours = SequenceScorer(model)(batch.input_ids, batch.attention_mask, batch.reply_mask)
        by_hand = []
        for context in (side.prompt_ids, side.rejected_prompt_ids):
            ids = torch.tensor([context + side.chosen_ids])
            logp = model(ids).logits[0, :-1].log_softmax(-1)
            targets = ids[0, len(context) :]
            by_hand.append(logp[len(context) - 1 :].gather(-1, targets[:, None]).sum().item())
    assert ours.tolist() == pytest.approx(by_hand, abs=1e-3)
    # DPO on the pair: -log sigmoid(beta * ((pi_c - ref_c) - (pi_r - ref_r)))
    ref = torch.tensor([by_hand[0] - 0.5, by_hand[1] + 0.25])
    logps = PairLogps(ours[:1], ours[1:], ref[:1], ref[1:], *batch.reply_tokens.chunk(2))
    loss, _ = preference_loss(logps, batch.margin, "dpo", "outside_beta", 0.1, 0.05)
    delta = (by_hand[0] - ref[0].item()) - (by_hand[1] - ref[1].item())
    expected = -torch.nn.functional.logsigmoid(torch.tensor(0.1 * delta)).item()
    assert loss.item() == pytest.approx(expected, abs=1e-5)
    # share_prompt: a batch holding an input-side pair is collated as plain rows
    mixed = make_batches(tokenized.pairs, 2, tok.pad_token_id, 0, share_prompt=True)
    assert len(mixed) == 1 and mixed[0].input_ids.shape[0] == 4 and mixed[0].position_ids is None
    alone = make_batches([one], 2, tok.pad_token_id, 0, share_prompt=True)
    assert alone[0].position_ids is not None


def test_pairs_file_round_trip(tmp_path):
    from rpo_bench.train.examples import read_pairs

    turn = turn_from_row(row([(1, 1, 0), (0, 0, 0)]))
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(p.to_row()) + "\n" for p in build_pairs([turn], "iopo")))
    read = read_pairs(path)
    assert [p.rejected_prompt is not None for p in read] == [True, True]
    assert all(p.chosen == p.rejected for p in read)


def test_short_lora_run_on_input_side_pairs(tmp_path):
    """`train` end to end on iopo pairs, shared-prompt batching on (the default)."""
    from rpo_bench.train import TrainConfig, train

    torch.set_num_threads(1)
    vectors = [(1, 1, 0), (1, 0, 1), (0, 0, 0), (0, 1, 1)]
    turns = [turn_from_row(row(vectors, id=f"t{k}")) for k in range(2)]
    pairs = build_pairs(turns, "iopo")
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(p.to_row()) + "\n" for p in pairs))
    cfg = TrainConfig(out=str(tmp_path / "iopo"), loss="dpo", batch_size=4, max_length=128,
                      lora={"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]},
                      lr=1e-3, warmup_ratio=0.0)  # fmt: skip
    assert cfg.share_prompt
    result = train(path, cfg, quiet=True)
    assert result.pairs == len(pairs) == 8 and result.steps == 2
    assert all(math.isfinite(r["loss"]) for r in result.log)
    assert (tmp_path / "iopo" / "final").is_dir()
