"""The SFT and KTO baselines' examples: hand-computed from verdict vectors, their files and
statistics, and on real samples of the embedded model checked with the rule judge."""

import argparse
import json

from test_pairs import BULLETS, LOWER, NO_COMMA, real_turns, row, write_samples  # noqa: F401

from rpo_bench.data.prompt import render
from rpo_bench.data.sample import kept_index
from rpo_bench.judge.rule import RuleJudge
from rpo_bench.pairs import (
    add_parser,
    build,
    build_pairs,
    example_stats,
    kind_of,
    load_pairs,
    run,
    stats_path,
    turn_from_row,
)

ISSUE = [(1, 1, 0), (1, 0, 1), (0, 0, 0)]  # docs/pairs.md's example


def shape(examples):
    return [(e.response, e.reversed, e.dropped, e.desirable) for e in examples]


def test_sft_chosen_is_each_rpo_chosen_once_under_its_rewritten_prompt():
    turn = turn_from_row(row(ISSUE))
    examples = build([turn], "sft_chosen")
    assert shape(examples) == [(0, (2,), (), None), (1, (1,), (), None), (2, (0, 1, 2), (), None)]
    by_chosen = {p.chosen: p for p in build_pairs([turn], "rpo")}
    for e in examples:
        assert (e.prompt, e.constraints) == (
            by_chosen[e.response].prompt,
            by_chosen[e.response].constraints,
        )
        assert e.kind == "sft" and e.id == f"t0/{e.response}"
    # the rpo options reach it: capped rpo pairs keep fewer chosen responses
    capped = {p.chosen for p in build_pairs([turn], "rpo", max_pairs_per_turn=2)}
    assert {e.response for e in build([turn], "sft_chosen", max_pairs_per_turn=2)} == capped


def test_sft_golden_is_the_best_sample_under_the_original_prompt():
    turn = turn_from_row(row(ISSUE))
    (golden,) = build([turn], "sft_golden")
    assert shape([golden]) == [(0, (), (), None)]  # 2 = 2 > 0 constraints: the earlier one
    assert golden.prompt == render(turn.task, turn.constraints, "user")
    assert golden.response == kept_index(turn.verdicts, "best")


def test_kto_labels_by_the_original_prompt():
    issue = turn_from_row(row(ISSUE))
    perfect = turn_from_row(row([(1, 1, 1), (1, 0, 1), (1, 1, 1)], id="t1"))
    examples = build([issue, perfect], "kto")
    # merged: t1's third response repeats the first vector
    assert shape(examples) == [(0, (), (), False), (1, (), (), False), (2, (), (), False),
                               (0, (), (), True), (1, (), (), False)]  # fmt: skip
    assert [e.id for e in examples[3:]] == ["t1/0+", "t1/1-"]
    assert all(e.prompt == render(e.turn.task, e.turn.constraints, "user") for e in examples)
    # unanimous constraints left out: only constraint 1 separates the two responses
    turn = turn_from_row(row([(1, 1, 0), (1, 0, 0)]))
    left_out = build([turn], "kto", keep_unanimous=False)
    assert shape(left_out) == [(0, (), (0, 2), True), (1, (), (0, 2), False)]


def test_kto_reversed_makes_every_response_desirable_under_its_own_prompt():
    turn = turn_from_row(row(ISSUE))
    examples = build([turn], "kto_reversed")
    assert shape(examples) == [
        (0, (2,), (), True), (0, (), (), False),
        (1, (1,), (), True), (1, (), (), False),
        (2, (0, 1, 2), (), True), (2, (), (), False),
    ]  # fmt: skip
    # a perfect response is desirable once; a failed non-reversible constraint is left out
    turn = turn_from_row(row([(1, 1), (1, 0)], constraints=(NO_COMMA, BULLETS)))
    assert shape(build([turn], "kto_reversed")) == [
        (0, (), (), True), (1, (), (1,), True), (1, (), (), False)
    ]  # fmt: skip
    # nothing left to show: no desirable example, the undesirable one stays
    turn = turn_from_row(row([(0,), (1,)], constraints=(BULLETS,)))
    assert shape(build([turn], "kto_reversed")) == [(0, (), (), False), (1, (), (), True)]


def test_statistics_by_hand():
    judged = [(1, 1, 0), (1, 0, 1), (1, 1, 1)]
    truth = [(1, 1, 1), (1, 0, 1), (1, 1, 0)]  # judged wrongly on responses 0 and 2
    turns = [turn_from_row(row(judged, truth=truth)), turn_from_row(row([(1, 1, 1)], id="b"))]
    kto = example_stats(turns, build(turns, "kto"), "kto")
    assert (kto["kind"], kto["examples"], kto["responses"], kto["desirable"]) == ("kto", 4, 4, 2)
    assert kto["examples_per_response"] == 1.0 and kto["share_turns_used"] == 1.0
    # turn a: response 0 truly passes all (labelled undesirable), response 2 truly fails one
    # (labelled desirable); turn b has no true verdicts
    assert kto["examples_with_true_verdicts"] == 3 and kto["example_noise"] == 2 / 3
    sft = example_stats(turns, build(turns, "sft_chosen"), "sft")
    # only turn a has pairs; response 0's reversed constraint 2 is truly passed
    assert (sft["examples"], sft["turns_used"], sft["share_turns_used"]) == (3, 1, 0.5)
    assert sft["example_noise"] == 2 / 3  # response 2 truly fails constraint 2 too
    assert sft["reversed_per_example"] == 2 / 3 and "desirable" not in sft


def test_cli_writes_examples_and_stats(tmp_path):
    samples = write_samples(tmp_path / "samples.jsonl", [row(ISSUE, id="a")])
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    for strategy, kind in (("sft_chosen", "sft"), ("kto", "kto")):
        out = tmp_path / strategy / "pairs.jsonl"
        args = parser.parse_args(
            ["pairs", "--samples", str(samples), "--strategy", strategy, "--out", str(out)]
        )
        args.func(args)
        stats = json.loads(stats_path(out).read_text())
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert stats["kind"] == kind == kind_of(strategy) and stats["examples"] == len(rows) == 3
        assert {r["kind"] for r in rows} == {kind} and rows[0]["strategy"] == strategy
        texts = [r["text"] for r in json.loads(samples.read_text())["responses"]]
        assert all(r["response"] == texts[r["response_index"]] for r in rows)
        assert ("desirable" in rows[0]) == (kind == "kto")
        data = load_pairs(out, as_messages=True)
        assert data[0]["response"] == [{"role": "assistant", "content": rows[0]["response"]}]


def test_rule_judge_on_real_samples(real_turns, tmp_path):  # noqa: F811
    """sft_chosen's examples are exactly the rpo chosen responses under their rewritten
    prompts, and each satisfies its prompt per the rule judge; kto's labels agree with it."""
    turns = [turn_from_row(r) for r in real_turns]
    examples = build(turns, "sft_chosen")
    chosen = {(p.turn.id, p.chosen, json.dumps(p.prompt)) for p in build_pairs(turns, "rpo")}
    got = [(e.turn.id, e.response, json.dumps(e.prompt)) for e in examples]
    assert len(got) == len(set(got)) == len(chosen) >= 8 and set(got) == chosen
    judge = RuleJudge()
    for e in examples:
        text = e.turn.responses[e.response]
        assert all(judge.verdicts(e.prompt, text, e.constraints)), e.id
        assert e.prompt == render(e.turn.task, e.constraints, "user")
    for e in build(turns, "kto"):
        text = e.turn.responses[e.response]
        assert e.desirable == all(judge.verdicts(e.prompt, text, e.turn.constraints)), e.id
    # the same through the files
    samples = write_samples(tmp_path / "samples.jsonl", real_turns)
    stats = run(samples, "sft_chosen", tmp_path / "pairs.jsonl")
    assert stats["examples"] == len(examples) and stats["example_noise"] is None
