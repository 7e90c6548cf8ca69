"""The compact trainer's loss and gradients equal TRL's DPOTrainer and KTOTrainer; the RPO
margin formula."""

from __future__ import annotations

import math

import pytest
import torch

from rpo_bench import models
from rpo_bench.train.batches import collate
from rpo_bench.train.logps import SequenceScorer
from rpo_bench.train.loss import PairLogps, preference_loss
from rpo_bench.train.tokenize import Encoded, encode

BETA = 0.1
PAIRS = [
    (
        [
            {"role": "user", "content": "Name a colour."},
            {"role": "assistant", "content": "Blue."},
            {"role": "user", "content": "Now list two fruits in lowercase."},
        ],
        "apple and pear",
        "I LIKE CARS.",
    ),
    ([{"role": "user", "content": "Say hi in French."}], "Bonjour !", "Hello there, friend."),
    (
        [{"role": "system", "content": "Answer in one word."}, {"role": "user", "content": "2+2?"}],
        "Four.",
        "The answer is four because two plus two is four.",
    ),
]


@pytest.fixture(scope="module")
def setup(prepared_model_dir):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    ref = models.load(str(prepared_model_dir))
    policy = models.load(str(prepared_model_dir))
    # move the policy off the reference so the log-ratios (and the loss) are not trivial
    with torch.no_grad():
        for p in policy.model.parameters():
            p.add_(torch.randn_like(p) * 5e-3)
    return policy, ref


def _ours(policy, ref, tokenizer, margins):
    encoded = [
        Encoded(i, *encode(tokenizer, prompt, c, r), margin=m)
        for i, ((prompt, c, r), m) in enumerate(zip(PAIRS, margins, strict=True))
    ]
    batch = collate(encoded, tokenizer.pad_token_id)
    with torch.no_grad():
        ref_logps = SequenceScorer(ref).eval()(
            batch.input_ids, batch.attention_mask, batch.reply_mask
        )
    logps = SequenceScorer(policy).eval()(batch.input_ids, batch.attention_mask, batch.reply_mask)
    tokens = batch.reply_mask.sum(1)
    pair = PairLogps(*logps.chunk(2), *ref_logps.chunk(2), *tokens.chunk(2))
    return batch, pair


def _trl_step(trainer_class, args, rows, policy, ref):
    """A TRL trainer's loss and gradients on all `rows` as one batch, the policy in eval mode."""
    from datasets import Dataset

    trainer = trainer_class(
        model=policy.model, ref_model=ref.model, args=args,
        train_dataset=Dataset.from_list(rows), processing_class=policy.tokenizer,
    )  # fmt: skip
    inputs = trainer.data_collator([trainer.train_dataset[i] for i in range(len(rows))])
    policy.model.eval()
    policy.model.zero_grad()
    loss = trainer.compute_loss(policy.model, inputs)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in policy.model.named_parameters()}
    policy.model.zero_grad()
    return trainer, inputs, loss, grads


@pytest.mark.parametrize(
    ("trl_loss_type", "ours", "eps"), [("sigmoid", "rpo", 0.0), ("robust", "robust_dpo", 0.2)]
)
def test_loss_and_gradients_equal_trl(setup, tmp_path, trl_loss_type, ours, eps):
    """TRL's sigmoid (our rpo at margin 0) and robust (Chowdhury et al. 2024) losses."""
    from trl import DPOConfig, DPOTrainer

    policy, ref = setup
    tok = policy.tokenizer
    rows = [
        {"prompt": p, "chosen": [{"role": "assistant", "content": c}],
         "rejected": [{"role": "assistant", "content": r}]}
        for p, c, r in PAIRS
    ]  # fmt: skip
    args = DPOConfig(
        output_dir=str(tmp_path), beta=BETA, max_length=256, per_device_train_batch_size=3,
        report_to="none", bf16=False, gradient_checkpointing=False, use_cpu=True, seed=0,
        loss_type=[trl_loss_type], label_smoothing=eps,
    )  # fmt: skip
    trainer, inputs, trl_loss, trl_grads = _trl_step(DPOTrainer, args, rows, policy, ref)

    batch, pair = _ours(policy.model, ref.model, tok, margins=[0, 0, 0])
    # same tokens, same split into prompt and reply, same chosen-then-rejected layout
    assert torch.equal(batch.input_ids, inputs["input_ids"])
    assert torch.equal(batch.reply_mask, inputs["completion_mask"])
    loss, metrics = preference_loss(pair, torch.zeros(3), ours, beta=BETA, label_smoothing=eps)
    loss.backward()
    assert 0.02 < abs(metrics["rewards/margins"])  # a non-trivial comparison point
    assert abs(loss.item() - trl_loss.item()) <= 1e-5
    worst = 0.0
    for name, p in policy.model.named_parameters():
        diff = (p.grad - trl_grads[name]).abs().max().item()
        worst = max(worst, diff)
        assert diff <= 1e-5, name
    total = torch.cat([g.flatten() for g in trl_grads.values()])
    assert total.abs().max().item() > 1e-3  # gradients are not vanishingly small
    ours = torch.cat([p.grad.flatten() for p in policy.model.parameters()])
    assert (ours - total).norm() / total.norm() < 1e-4


@pytest.mark.parametrize("mode", ["outside_beta", "inside_beta"])
def test_margin_shifts_the_loss_as_the_formula_says(mode):
    # hand-computed: delta = (chosen - ref_chosen) - (rejected - ref_rejected)
    #                      = (-10 - -12) - (-20 - -19) = 2 + 1 = 3
    t = torch.tensor
    pair = PairLogps(t([-10.0]), t([-20.0]), t([-12.0]), t([-19.0]), t([5]), t([5]))
    beta, gamma = 0.1, 0.05
    for g in (0, 1, 4):
        loss, _ = preference_loss(pair, torch.tensor([float(g)]), "rpo", mode, beta, gamma)
        z = beta * 3 - gamma * g if mode == "outside_beta" else beta * (3 - gamma * g)
        assert loss.item() == pytest.approx(math.log1p(math.exp(-z)), abs=1e-6)
    dpo, _ = preference_loss(pair, torch.tensor([4.0]), "dpo", mode, beta, gamma)
    assert dpo.item() == pytest.approx(math.log1p(math.exp(-0.3)), abs=1e-6)


def test_margin_on_the_model_batch(setup):
    policy, ref = setup
    margins = [0, 2, 5]
    _, pair = _ours(policy.model, ref.model, policy.tokenizer, margins)
    with torch.no_grad():
        delta = (pair.chosen - pair.ref_chosen) - (pair.rejected - pair.ref_rejected)
        g = torch.tensor(margins, dtype=torch.float32)
        for mode, z in (
            ("outside_beta", BETA * delta - 0.05 * g),
            ("inside_beta", BETA * (delta - 0.05 * g)),
        ):
            loss, _ = preference_loss(pair, g, "rpo", mode, BETA, 0.05)
            expected = sum(math.log1p(math.exp(-v)) for v in z.tolist()) / 3
            assert loss.item() == pytest.approx(expected, abs=1e-6)
        # a larger margin always raises the loss (the chosen must win by more)
        lo, _ = preference_loss(pair, g, "rpo", "outside_beta", BETA, 0.05)
        hi, _ = preference_loss(pair, g + 1, "rpo", "outside_beta", BETA, 0.05)
        assert hi.item() > lo.item()


def test_shared_prompt_and_packed_rows_equal_plain_rows(setup):
    """`prompt|chosen|rejected` in one row (4D mask, restarted positions), and several such
    segments packed into one row, give the plain path's log-probs, loss and gradients on
    the same pairs, float32."""
    from rpo_bench.train.batches import collate_shared

    policy, _ = setup
    tok = policy.tokenizer
    encoded = [
        Encoded(i, *encode(tok, prompt, c, r), margin=1 + i)
        for i, (prompt, c, r) in enumerate(PAIRS)
    ]
    segments = [len(e.prompt_ids) + len(e.chosen_ids) + len(e.rejected_ids) for e in encoded]
    scorer = SequenceScorer(policy.model).eval()
    layouts = {
        "plain": lambda: collate(encoded, tok.pad_token_id),
        "shared": lambda: collate_shared(encoded, tok.pad_token_id),
        "packed": lambda: collate_shared(encoded, tok.pad_token_id, width=sum(segments)),
    }
    results = {}
    for name, make in layouts.items():
        batch = make()
        policy.model.zero_grad(set_to_none=True)
        logps = scorer(**batch.inputs("cpu"))
        ref = logps.detach() - 0.1  # any fixed reference: the loss then depends on the policy
        pair = PairLogps(*logps.chunk(2), *ref.chunk(2), *batch.reply_tokens.chunk(2))
        loss, _ = preference_loss(pair, batch.margin, "rpo", "outside_beta", BETA, 0.05, 0.1)
        loss.backward()
        grads = {
            n: p.grad.clone() for n, p in policy.model.named_parameters() if p.grad is not None
        }
        results[name] = (logps.detach(), loss.detach(), grads, batch)
    lp_plain, loss_plain, g_plain, plain = results["plain"]
    rows = {"plain": 2 * len(PAIRS), "shared": len(PAIRS), "packed": 1}
    for name, (lp, loss, g_other, batch) in results.items():
        assert batch.input_ids.shape[0] == rows[name], name
        assert torch.equal(plain.reply_tokens, batch.reply_tokens)
        torch.testing.assert_close(lp, lp_plain, atol=1e-5, rtol=1e-5, msg=name)
        torch.testing.assert_close(loss, loss_plain, atol=1e-6, rtol=1e-5, msg=name)
        assert g_plain.keys() == g_other.keys() and len(g_plain) > 100
        for param, g in g_plain.items():
            torch.testing.assert_close(g_other[param], g, atol=1e-5, rtol=1e-4, msg=param)
    # packed: one row of exactly the pairs' tokens, no padding
    assert results["packed"][3].input_ids.shape[1] == sum(segments)


def test_packing_fills_rows_first_fit_and_never_widens_a_batch():
    from rpo_bench.train.batches import _pack, make_batches

    assert _pack([5, 3, 2, 4], 6) == [[0], [3, 2], [1]]
    assert _pack([9, 2], 6) == [[0], [1]]  # a pair wider than a row gets its own
    pairs = [Encoded(i, [1] * n, [2] * 3, [3] * 3, margin=1) for i, n in enumerate([4, 14, 5, 3])]
    plain = make_batches(pairs, 4, 0, seed=0, share_prompt=True)
    packed = make_batches(pairs, 4, 0, seed=0, share_prompt=True, pack=True)
    assert [b.input_ids.shape for b in plain] == [(4, 20)]
    # segments 10, 20, 11, 9 in rows as wide as the longest (20): [20], [11 + 9], [10]
    assert packed[0].input_ids.shape == (3, 20)
    assert packed[0].tokens == plain[0].tokens == 20 + 10 + 11 + 9


def test_noise_aware_losses_by_hand():
    # delta = 3 as above; at eps = 0 both are DPO, and robust_dpo's flipped term enters
    # with a minus sign, scaled by 1 / (1 - 2 eps)
    t = torch.tensor
    pair = PairLogps(t([-10.0]), t([-20.0]), t([-12.0]), t([-19.0]), t([5]), t([5]))
    right, flipped = math.log1p(math.exp(-0.3)), math.log1p(math.exp(0.3))
    for eps in (0.0, 0.1, 0.3):
        cdpo, _ = preference_loss(pair, t([2.0]), "cdpo", beta=0.1, label_smoothing=eps)
        robust, _ = preference_loss(pair, t([2.0]), "robust_dpo", beta=0.1, label_smoothing=eps)
        assert cdpo.item() == pytest.approx((1 - eps) * right + eps * flipped, abs=1e-6)
        want = ((1 - eps) * right - eps * flipped) / (1 - 2 * eps)
        assert robust.item() == pytest.approx(want, abs=1e-6)


KTO = [
    (PAIRS[0][0], "apple and pear", True),
    (PAIRS[1][0], "Hello there, friend.", False),
    (PAIRS[2][0], "Four.", True),
    ([{"role": "user", "content": "Name a planet."}], "I LIKE CARS.", False),
]


def test_kto_loss_and_gradients_equal_trl(setup, tmp_path):
    """TRL's KTOTrainer on one batch: same tokens, same KL pairs (completions rotated by one
    within the batch), same loss and gradients, float32."""
    from trl import KTOConfig, KTOTrainer

    from rpo_bench.train.loss import KtoLogps, kto_loss
    from rpo_bench.train.unpaired import mismatched

    # the perturbed model as the reference: the policy then beats it on mismatched pairs too,
    # so the KL estimate is positive (not clamped to 0) and enters the loss
    ref, policy = setup
    tok = policy.tokenizer
    rows = [{"prompt": p, "completion": [{"role": "assistant", "content": y}], "label": ok}
            for p, y, ok in KTO]  # fmt: skip
    args = KTOConfig(
        output_dir=str(tmp_path), beta=BETA, max_length=256, per_device_train_batch_size=4,
        report_to="none", bf16=False, gradient_checkpointing=False, use_cpu=True, seed=0,
    )  # fmt: skip
    trainer, inputs, trl_loss, trl_grads = _trl_step(KTOTrainer, args, rows, policy, ref)

    encoded = [
        Encoded(i, *encode(tok, p, y), [], 0, desirable=ok) for i, (p, y, ok) in enumerate(KTO)
    ]
    batch = collate(mismatched(encoded, 256), tok.pad_token_id)
    n, width = len(KTO), inputs["input_ids"].shape[1]
    # same sequences: (x_i, y_i) and TRL's KL sequences (x_i, y_{i-1})
    assert torch.equal(batch.input_ids[:n, :width], inputs["input_ids"])
    kl_width = inputs["KL_input_ids"].shape[1]
    assert torch.equal(batch.input_ids[n:, :kl_width], inputs["KL_input_ids"])
    with torch.no_grad():
        ref_logps = SequenceScorer(ref.model).eval()(
            batch.input_ids, batch.attention_mask, batch.reply_mask
        )
    logps = SequenceScorer(policy.model).eval()(
        batch.input_ids, batch.attention_mask, batch.reply_mask
    )
    kto = KtoLogps(*logps.chunk(2), *ref_logps.chunk(2))
    loss, metrics = kto_loss(kto, batch.desirable, beta=BETA)
    loss.backward()
    assert metrics["kl"] > 0.01  # the reference point is not clamped away
    # the same estimate as TRL logs (its "eval" metrics: the model is in eval mode)
    assert metrics["kl"] == pytest.approx(trainer._metrics["eval"]["kl"][-1], abs=1e-5)
    diff = abs(loss.item() - trl_loss.item())
    print(f"KTO loss: ours {loss.item():.8f}, TRL {trl_loss.item():.8f}, |diff| {diff:.2e}")
    assert diff <= 1e-5
    worst = max((p.grad - trl_grads[n]).abs().max().item() for n, p in
                policy.model.named_parameters())  # fmt: skip
    print(f"KTO gradients: max |diff| {worst:.2e}")
    assert worst <= 1e-5
    total = torch.cat([g.flatten() for g in trl_grads.values()])
    assert total.abs().max().item() > 1e-4  # gradients are not vanishingly small
