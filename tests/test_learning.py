"""Did training learn? The learning metrics on whole sets equal a hand computation; a run
records them at step 0 (where the policy is the reference: ties, the loss at its null),
after every epoch and at the end; a trainer that can learn overfits 16 pairs."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from test_train import _cfg, _pairs, _write

from rpo_bench.train import TrainConfig, train
from rpo_bench.train.learning import kto_learning, preference_learning, wilson
from rpo_bench.train.loss import PairLogps


def logps(chosen, rejected, ref_chosen, ref_rejected, tokens=(4, 4, 4, 4)) -> PairLogps:
    t = torch.tensor
    return PairLogps(t(chosen), t(rejected), t(ref_chosen), t(ref_rejected), t(tokens),
                     t(tokens))  # fmt: skip


def test_learning_metrics_equal_a_hand_computation():
    lp = logps([-10.0, -12.0, -9.0, -20.0], [-11.0, -11.0, -15.0, -20.0],
               [-10.5, -12.0, -10.0, -20.0], [-10.5, -12.0, -14.0, -20.0])  # fmt: skip
    g = torch.tensor([1.0, 2.0, 3.0, 0.0])
    cfg = TrainConfig(loss="rpo", margin_mode="outside_beta", beta=0.5, gamma=0.2)
    out = preference_learning(lp, g, cfg)
    # drifts: chosen (0.5, 0, 1, 0), rejected (-0.5, 1, -1, 0); rewards = beta * difference
    rewards = [0.5 * 1.0, 0.5 * -1.0, 0.5 * 2.0, 0.0]
    assert out["n"] == 4
    assert out["accuracy"] == (2 + 0.5) / 4  # two right, one wrong, one tie (half)
    assert out["accuracy_ci95"] == pytest.approx(wilson(2.5, 4))
    assert out["margin"] == pytest.approx(sum(rewards) / 4)
    assert (out["drift_chosen"], out["drift_rejected"]) == pytest.approx((0.375, -0.125))
    delta = [1.0, -1.0, 2.0, 0.0]
    hand = [-math.log(1 / (1 + math.exp(-(0.5 * d - 0.2 * m))))
            for d, m in zip(delta, g.tolist(), strict=True)]  # fmt: skip
    assert out["loss"] == pytest.approx(sum(hand) / 4)
    null = [-F.logsigmoid(torch.tensor(-0.2 * m)).item() for m in g.tolist()]
    assert out["null_loss"] == pytest.approx(sum(null) / 4)  # -log sigmoid(-gamma g)
    inside = preference_learning(lp, g, TrainConfig(loss="rpo", margin_mode="inside_beta",
                                                     beta=0.5, gamma=0.2))  # fmt: skip
    null = [-F.logsigmoid(torch.tensor(-0.5 * 0.2 * m)).item() for m in g.tolist()]
    assert inside["null_loss"] == pytest.approx(sum(null) / 4)  # -log sigmoid(-beta gamma g)
    for loss, expected in (("dpo", math.log(2)), ("ipo", 1 / (4 * 0.5**2)),
                           ("cdpo", math.log(2)), ("robust_dpo", math.log(2))):  # fmt: skip
        cfg = TrainConfig(loss=loss, beta=0.5, label_smoothing=0.1)
        assert preference_learning(lp, g, cfg)["null_loss"] == pytest.approx(expected)


def test_kto_learning_metrics_equal_a_hand_computation():
    # responses' drift (0.5, -1, 0, -2), labels (good, good, bad, bad); mismatched drift 0.25
    lp = logps([-9.5, -13.0, -10.0, -22.0], [-10.75] * 4, [-10.0, -12.0, -10.0, -20.0],
               [-11.0] * 4)  # fmt: skip
    desirable = torch.tensor([True, True, False, False])
    cfg = TrainConfig(loss="kto", beta=0.5, batch_size=2)
    out = kto_learning(lp, desirable, cfg)
    signed = [0.5 * 0.5, 0.5 * -1.0, 0.0, 0.5 * 2.0]  # the reward, signed by the label
    assert out["accuracy"] == (2 + 0.5) / 4 and out["margin"] == pytest.approx(sum(signed) / 4)
    assert (out["drift_chosen"], out["drift_rejected"]) == pytest.approx((-0.25, -1.0))
    kl = 0.25
    hand = [1 - 1 / (1 + math.exp(-0.5 * (d - kl))) for d in (0.5, -1.0)]
    hand += [1 - 1 / (1 + math.exp(-0.5 * (kl - d))) for d in (0.0, -2.0)]
    assert out["loss"] == pytest.approx(sum(hand) / 4)
    assert out["null_loss"] == pytest.approx(0.5)  # 1 - sigmoid(0) for every example


def test_wilson_interval():
    lo, hi = wilson(62, 100)
    assert (round(lo, 3), round(hi, 3)) == (0.522, 0.709)  # the textbook value
    assert all(math.isnan(x) for x in wilson(0, 0))  # no pairs, no interval


def _gold(tmp_path) -> str:
    """Six pairs never trained on, like the training pairs (the gold set's role)."""
    return _write(tmp_path / "gold.jsonl", [{**r, "id": f"g{k}"} for k, r in
                                           enumerate(_pairs(16)[10:])])  # fmt: skip


def test_a_run_records_learning_at_step_0_every_epoch_and_the_end(tmp_path):
    pairs = _write(tmp_path / "pairs.jsonl", _pairs(10))
    cfg = _cfg(tmp_path, "run", loss="dpo", epochs=2, val_fraction=0.2, lr=5e-3,
               gold=_gold(tmp_path))  # fmt: skip
    result = train(pairs, cfg, quiet=True)
    learning = json.loads((result.out / "learning.json").read_text())
    assert learning["loss"] == "dpo"
    points = learning["points"]
    assert [p["step"] for p in points] == [0, 4, 8] and [p["epochs"] for p in points] == [0, 1, 2]
    start = points[0]
    for name, n in (("train", 8), ("validation", 2), ("gold", 6)):
        s = start[name]
        # the policy is the reference: every pair a tie, the loss at its null
        assert s["n"] == n and s["accuracy"] == 0.5 and s["margin"] == 0
        assert s["loss"] == pytest.approx(s["null_loss"]) == pytest.approx(math.log(2))
        assert s["drift_chosen"] == s["drift_rejected"] == 0
    end = points[-1]["train"]
    assert end["loss"] < end["null_loss"] and end["accuracy"] > 0.5  # 8 easy pairs, lr 5e-3
    assert points[-1]["gold"]["accuracy"] > 0.5  # pairs like those it learned


def test_step_0_takes_the_reference_only_where_the_policy_gives_it(monkeypatch):
    """Before the first step one batch is scored: equal to the reference, the reference's
    numbers stand for the set (exact ties); not equal, every batch is scored."""
    from rpo_bench.train import learning
    from rpo_bench.train.batches import Batch

    def batch(i: int) -> Batch:
        return Batch(torch.tensor([2 * i, 2 * i + 1]), torch.zeros(4, 1), torch.ones(4, 1),
                     torch.ones(4, 1), torch.ones(2), 4, torch.full((4,), 3))  # fmt: skip

    ref = torch.tensor([[-5.0, -6.0], [-7.0, -8.0], [-9.0, -4.0], [-3.0, -2.0]])
    measured = learning.MeasuredSet([batch(0), batch(1)], ref)
    scored: list[int] = []

    def policy(shift: float):
        def logps(run, b):
            scored.append(int(b.index[0]))
            return ref[b.index, 0] + shift, ref[b.index, 1] + shift

        return logps

    monkeypatch.setattr(learning, "policy_logps", policy(1e-6))  # the reference, to rounding
    got, _ = learning.set_logps(None, measured, start=True)
    assert (
        scored == [0]
        and torch.equal(got.chosen, ref[:, 0])
        and torch.equal(got.rejected, ref[:, 1])
    )
    scored.clear()
    monkeypatch.setattr(learning, "policy_logps", policy(0.5))  # e.g. a LoRA B that is not 0
    got, _ = learning.set_logps(None, measured, start=True)
    assert scored == [0, 2] and torch.equal(got.chosen, ref[:, 0] + 0.5)


def test_a_single_response_loss_is_measured_on_the_gold_set_alone(tmp_path):
    rows = [{"kind": "sft", "id": r["id"], "prompt": r["prompt"], "response": r["chosen"]}
            for r in _pairs(8)]  # fmt: skip
    cfg = _cfg(tmp_path, "sft", loss="sft", epochs=1, lr=5e-3, gold=_gold(tmp_path))
    result = train(_write(tmp_path / "sft.jsonl", rows), cfg, quiet=True)
    points = json.loads((result.out / "learning.json").read_text())["points"]
    assert [sorted(p) for p in points] == [["epochs", "gold", "step"]] * 2
    start, end = points[0]["gold"], points[-1]["gold"]
    assert start["accuracy"] == 0.5 and start["loss"] == pytest.approx(math.log(2))  # DPO's
    assert end["drift_chosen"] > end["drift_rejected"]  # SFT raised the chosen kind of reply


def _kto(pairs: list[dict]) -> list[dict]:
    """Each pair as two KTO examples: its chosen reply desirable, its rejected undesirable."""
    return [{"kind": "kto", "id": f"{p['id']}/{good}", "prompt": p["prompt"],
             "response": p["chosen" if good else "rejected"], "desirable": good}
            for p in pairs for good in (True, False)]  # fmt: skip


@pytest.mark.parametrize(
    ("loss", "mode"),
    [("dpo", None), ("rpo", "outside_beta"), ("rpo", "inside_beta"), ("ipo", None), ("kto", None)],
)
def test_the_trainer_overfits_16_pairs(tmp_path, loss, mode):
    """A masking, truncation or reference bug keeps the loss at its null: this catches it.
    KTO trains on 16 examples (8 pairs' replies, each labelled)."""
    rows = _kto(_pairs(8)) if loss == "kto" else _pairs(16)
    pairs = _write(tmp_path / "pairs.jsonl", rows)
    extra = {"margin_mode": mode} if mode else {}
    cfg = _cfg(tmp_path, "fit", loss=loss, epochs=4, lr=2e-2, batch_size=4, warmup_ratio=0.0,
               lora={"r": 8, "alpha": 16, "dropout": 0.0,
                     "target_modules": ["q_proj", "v_proj"]}, **extra)  # fmt: skip
    result = train(pairs, cfg, quiet=True)
    end = json.loads((result.out / "learning.json").read_text())["points"][-1]["train"]
    assert end["accuracy"] >= 0.95, end
    assert end["loss"] < 0.5 * end["null_loss"], end
