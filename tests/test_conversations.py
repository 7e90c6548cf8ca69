"""Training conversations: determinism, cumulative constraints, the conflict table, disjoint
train/heldout seeds, no 8-gram overlap with the evaluation prompts, JSONL round trip."""

from __future__ import annotations

import json
import random
import re

import pytest

from rpo_bench.constraints import from_ifeval
from rpo_bench.constraints.conflicts import CONFLICTS, conflict, conflicts
from rpo_bench.data import conversations as cv
from rpo_bench.data import verifiable as vd
from rpo_bench.data.prompt import render
from rpo_bench.evaluate.multi_if import load_conversations as load_multi_if
from rpo_bench.jsonl import read_jsonl
from rpo_bench.paths import REPO_ROOT, resource

LOWER, CAPITAL = "change_case:english_lowercase", "change_case:english_capital"


def words(n, relation):
    return from_ifeval("length_constraints:number_words", {"num_words": n, "relation": relation})


def test_same_seed_same_conversations_other_seed_others():
    a = [c.to_dict() for c in vd.build(20, turns=3, k=2, seed=7)]
    b = [c.to_dict() for c in vd.build(20, turns=3, k=2, seed=7)]
    c = [c.to_dict() for c in vd.build(20, turns=3, k=2, seed=8)]
    assert a == b
    assert a != c


def test_constraints_are_cumulative_and_k_new_per_turn():
    for conv in vd.build(30, turns=4, k=2, seed=1):
        for t, turn in enumerate(conv.turns):
            assert len(turn.constraints) == 2 * (t + 1)
            if t:
                assert turn.constraints[: 2 * t] == conv.turns[t - 1].constraints
            assert set(c.instruction_id for c in turn.constraints) <= set(vd.SAMPLERS)


def test_seed_follow_up_turns_are_used_then_generic_ones():
    convs = vd.build(len([s for s in vd.seed_tasks() if s.split == "train"]), turns=3)
    seeds = {s.id: s for s in vd.seed_tasks()}
    mt = [c for c in convs if c.seed_id.startswith("mtbench-")]
    si = [c for c in convs if c.seed_id.startswith("selfinstruct-")]
    assert mt and si
    for conv in mt:
        assert [t.task for t in conv.turns[:2]] == list(seeds[conv.seed_id].turns)
        assert conv.turns[2].task in vd.FOLLOW_UPS
    for conv in si:
        assert conv.turns[0].task == seeds[conv.seed_id].turns[0]
        assert all(t.task in vd.FOLLOW_UPS for t in conv.turns[1:])
    first = json.loads(resource("seeds", "self_instruct_seed_tasks.jsonl").open().readline())
    assert seeds["selfinstruct-0"].turns == (first["instruction"],)  # its input is empty


@pytest.mark.parametrize(
    ("a", "b", "clash"),
    [
        (from_ifeval(LOWER), from_ifeval(CAPITAL), True),
        (words(50, "at least"), words(50, "less than"), True),
        (words(80, "at least"), words(30, "less than"), True),
        (words(20, "at least"), words(50, "less than"), False),
        (words(20, "at least"), words(40, "at least"), True),  # the same bound twice
        (
            from_ifeval("detectable_format:json_format"),
            from_ifeval("detectable_format:title"),
            True,
        ),
        (
            from_ifeval(LOWER),
            from_ifeval("detectable_content:postscript", {"postscript_marker": "P.S."}),
            True,
        ),
        (
            from_ifeval(LOWER),
            from_ifeval(
                "change_case:capital_word_frequency",
                {"capital_frequency": 2, "capital_relation": "less than"},
            ),
            False,
        ),
        (
            from_ifeval(LOWER),
            from_ifeval(
                "change_case:capital_word_frequency",
                {"capital_frequency": 2, "capital_relation": "at least"},
            ),
            True,
        ),
        (
            from_ifeval("keywords:existence", {"keywords": ["plan"]}),
            from_ifeval("keywords:forbidden_words", {"forbidden_words": ["Plan", "very"]}),
            True,
        ),
        (
            words(10, "less than"),
            from_ifeval(
                "length_constraints:number_sentences", {"num_sentences": 5, "relation": "at least"}
            ),
            True,
        ),
        (from_ifeval("punctuation:no_comma"), from_ifeval("detectable_format:title"), False),
    ],
)
def test_conflict_table(a, b, clash):
    assert (conflict(a, b) is not None) == clash
    assert (conflict(b, a) is not None) == clash


def test_every_listed_conflict_is_enforced():
    for pair in CONFLICTS:
        ids = sorted(pair)
        a, b = (from_ifeval(i, vd.SAMPLERS[i](random.Random(0))) for i in ids)
        assert conflict(a, b) == CONFLICTS[pair]


def test_no_turn_holds_a_contradictory_pair():
    for split in cv.SPLITS:
        for conv in vd.build(150, turns=3, k=3, seed=5, split=split):
            for turn in conv.turns:
                assert conflicts(turn.constraints) == []


def test_train_and_heldout_use_disjoint_seed_tasks_whatever_the_seed():
    splits = {s.id: s.split for s in vd.seed_tasks()}
    assert len(splits) == 255
    held = {k for k, v in splits.items() if v == "heldout"}
    assert 30 < len(held) < 80
    for seed in (0, 1, 2):
        train = {c.seed_id for c in vd.build(300, turns=1, seed=seed, split="train")}
        heldout = {c.seed_id for c in vd.build(300, turns=1, seed=seed, split="heldout")}
        assert train.isdisjoint(heldout)
        assert heldout == held and train == set(splits) - held  # 300 covers every seed task


def _words(text):
    return re.findall(r"[a-z0-9']+", text.lower())


def _grams(text, n=8):
    w = _words(text)
    return {tuple(w[i : i + n]) for i in range(len(w) - n + 1)}


def _eval_grams():
    grams = set()
    for path in (
        resource("ifeval", "input_data.jsonl"),
        resource("ifbench", "IFBench_test.jsonl"),
    ):
        rows = read_jsonl(path)
        assert len(rows) > 100
        for row in rows:
            grams |= _grams(row["prompt"])
    fixture = load_multi_if(REPO_ROOT / "tests" / "fixtures" / "multi_if_fixture.csv")
    assert fixture
    for conv in fixture:
        for _, turn in conv.present():
            grams |= _grams(turn.prompt)
    return grams


def test_no_8gram_overlap_with_ifeval_ifbench_or_multi_if():
    """Every seed task and follow-up, and every rendered training message, shares no word
    8-gram with an evaluation prompt. 8-grams lying wholly inside the rendered constraint
    block are the constraint library's instruction wording for the same IFEval instruction
    types the evaluation sets state ("do not use any commas in your response"); they are
    excluded. 8-grams spanning the task and the block are checked."""
    evaluation = _eval_grams()
    for seed in vd.seed_tasks():
        for text in seed.turns:
            assert not _grams(text) & evaluation, seed.id
    for text in vd.FOLLOW_UPS:
        assert not _grams(text) & evaluation
    checked = 0
    for split in cv.SPLITS:
        for slot in ("user", "system"):
            for conv in vd.build(300, turns=3, k=2, seed=11, split=split, constraint_slot=slot):
                history = []
                for turn in conv.turns:
                    messages = render(turn.task, turn.constraints, slot, None, history)
                    template = _grams(render("", turn.constraints, "user")[-1]["content"])
                    template |= _grams(render("", turn.constraints, "system")[0]["content"])
                    for m in messages:
                        assert not (_grams(m["content"]) - template) & evaluation, conv.id
                    history = [*history, messages[-1], {"role": "assistant", "content": "ok"}]
                    checked += 1
    assert checked == 2 * 2 * 300 * 3


def test_jsonl_round_trip_and_errors_name_line_and_field(tmp_path):
    convs = vd.build(5, turns=2, k=2, seed=3, constraint_slot="system", system="Be brief.")
    path = tmp_path / "conv.jsonl"
    cv.write_conversations(path, convs)
    assert cv.read_conversations(path) == convs
    rows = read_jsonl(path)
    assert rows[0]["constraint_slot"] == "system" and rows[0]["system"] == "Be brief."
    rows[3]["turns"][1]["constraints"][0]["id"] = "keywords:nonsense"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(ValueError, match=r"conv\.jsonl:4: field 'turns\[1\]\.constraints'"):
        cv.read_conversations(path)
    del rows[3]["turns"]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(ValueError, match=r"conv\.jsonl:4: field 'turns'"):
        cv.read_conversations(path)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="split"):
        vd.build(1, split="test")
    with pytest.raises(ValueError, match="constraint_slot"):
        vd.build(1, constraint_slot="assistant")
    with pytest.raises(ValueError, match="no kwarg sampler"):
        vd.build(1, ids=["combination:two_responses"])


def test_cli_writes_conversations(tmp_path, capsys):
    import argparse

    parser = argparse.ArgumentParser()
    vd.add_parser(parser.add_subparsers(dest="command"))
    out = tmp_path / "c.jsonl"
    args = parser.parse_args(
        ["conversations", "--n-conversations", "4", "--turns", "2", "--out", str(out)]
    )
    args.func(args)
    assert len(cv.read_conversations(out)) == 4
    assert json.loads(capsys.readouterr().out)["conversations"] == 4
