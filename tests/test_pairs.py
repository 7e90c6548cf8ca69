"""Pair strategies, the samples/pairs file contracts and pair statistics.

Expectations are computed by hand from verdict vectors; the rule-judge invariant of
`rpo` is checked on real samples of the embedded model.
"""

import argparse
import json
import random
from itertools import combinations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rpo_bench.constraints import from_ifeval
from rpo_bench.data.prompt import render
from rpo_bench.pairs import (
    PAIR_STRATEGIES,
    add_parser,
    build_pairs,
    load_pairs,
    pair_stats,
    read_samples,
    run,
    stats_path,
    turn_from_row,
)

NO_COMMA = {"id": "punctuation:no_comma", "kwargs": {}}
LOWER = {"id": "change_case:english_lowercase", "kwargs": {}}
WORDS = {
    "id": "length_constraints:number_words",
    "kwargs": {"num_words": 24, "relation": "at least"},
}
SUN = {"id": "keywords:existence", "kwargs": {"keywords": ["sun"]}}
BULLETS = {"id": "detectable_format:number_bullet_lists", "kwargs": {"num_bullets": 3}}
POOL = [NO_COMMA, LOWER, WORDS, SUN, {"id": "detectable_format:title", "kwargs": {}}]


def row(vectors, constraints=(NO_COMMA, LOWER, WORDS), truth=None, **extra):
    responses = [
        {"text": f"response {k}", "verdicts": [bool(x) for x in v]} for k, v in enumerate(vectors)
    ]
    for resp, t in zip(responses, truth or [], strict=False):
        resp["true_verdicts"] = [bool(x) for x in t]
    return {
        "id": extra.pop("id", "t0"),
        "history": [],
        "task": "Describe the sea.",
        "constraints": json.loads(json.dumps(list(constraints))),  # spoiled by tests
        "constraint_slot": "user",
        "responses": responses,
        **extra,
    }


def plans(pairs):
    return [(p.chosen, p.rejected, p.margin, p.reversed, p.dropped) for p in pairs]


def rule_invariant(pair):
    """Chosen passes every constraint of its prompt; rejected fails exactly `margin`."""
    chosen, rejected = pair.turn.responses[pair.chosen], pair.turn.responses[pair.rejected]
    assert all(c.check(chosen) for c in pair.constraints), pair.id
    assert sum(not c.check(rejected) for c in pair.constraints) == pair.margin, pair.id


# --- the issue's example ---------------------------------------------------------------


def test_issue_example():
    turn = turn_from_row(row([(1, 1, 0), (1, 0, 1), (0, 0, 0)]))
    rpo = build_pairs([turn], "rpo")
    assert len(rpo) == 6 and {p.margin for p in rpo} == {2}
    assert plans(rpo) == [
        (0, 1, 2, (2,), ()),
        (0, 2, 2, (2,), ()),
        (1, 0, 2, (1,), ()),
        (1, 2, 2, (1,), ()),
        (2, 0, 2, (0, 1, 2), ()),
        (2, 1, 2, (0, 1, 2), ()),
    ]
    assert plans(build_pairs([turn], "dpo_count")) == [(0, 2, 2, (), ()), (1, 2, 2, (), ())]
    assert build_pairs([turn], "dpo_perfect") == []
    # The reversed constraint is rendered by its own description, via render().
    first = rpo[0]
    rev = from_ifeval("length_constraints:number_words", WORDS["kwargs"]).reverse()
    assert first.prompt == render("Describe the sea.", first.constraints, "user")
    assert "Answer with at most 23 words." in first.prompt[-1]["content"]
    assert first.constraints[2] == rev
    out = first.to_row()
    assert out["chosen"] == "response 0" and out["rejected"] == "response 1"
    assert out["reversed"] == [2] and out["strategy"] == "rpo" and out["margin"] == 2


def test_unequal_margins_and_merged_vectors():
    # A=(1,1,1), B=(1,0,0), C=(0,0,0); response 3 repeats A's vector and is merged into A.
    turn = turn_from_row(row([(1, 1, 1), (1, 0, 0), (0, 0, 0), (1, 1, 1)]))
    assert plans(build_pairs([turn], "rpo")) == [
        (0, 1, 2, (), ()),
        (0, 2, 3, (), ()),
        (1, 0, 2, (1, 2), ()),
        (1, 2, 1, (1, 2), ()),
        (2, 0, 3, (0, 1, 2), ()),
        (2, 1, 1, (0, 1, 2), ()),
    ]
    assert plans(build_pairs([turn], "dpo_count")) == [
        (0, 1, 2, (), ()),
        (0, 2, 3, (), ()),
        (1, 2, 1, (), ()),
    ]
    assert plans(build_pairs([turn], "dpo_perfect")) == [(0, 1, 2, (), ()), (0, 2, 3, (), ())]
    # One way: dpo_count's pairs, with the chosen's failures reversed.
    assert plans(build_pairs([turn], "rpo_one_way")) == [
        (0, 1, 2, (), ()),
        (0, 2, 3, (), ()),
        (1, 2, 1, (1, 2), ()),
    ]
    # Removal: B over A keeps only constraint 0, which A passes too (margin 0: no pair);
    # C chosen keeps no constraint at all.
    assert plans(build_pairs([turn], "drop_failed")) == [
        (0, 1, 2, (), ()),
        (0, 2, 3, (), ()),
        (1, 2, 1, (), (1, 2)),
    ]
    stats = pair_stats([turn], build_pairs([turn], "rpo"))
    assert stats["responses"] == 4 and stats["distinct_responses"] == 3
    assert stats["pairs_per_response"] == 6 / 4
    assert stats["margin_histogram"] == {"1": 2, "2": 2, "3": 2}
    assert stats["mean_margin"] == 2.0 and stats["pair_noise"] is None


def test_min_margin_and_max_pairs():
    turn = turn_from_row(row([(1, 1, 1), (1, 0, 0), (0, 0, 0)]))
    assert [p.margin for p in build_pairs([turn], "rpo", min_margin=2)] == [2, 3, 2, 3]
    assert plans(build_pairs([turn], "rpo", max_pairs_per_turn=2)) == [
        (0, 2, 3, (), ()),
        (2, 0, 3, (0, 1, 2), ()),
    ]
    # Three: both margin-3 pairs plus one of the two margin-2 pairs, chosen by the seed.
    picks = {}
    for seed in range(12):
        kept = build_pairs([turn], "rpo", max_pairs_per_turn=3, seed=seed)
        assert sorted(p.margin for p in kept) == [2, 3, 3]
        assert kept == build_pairs([turn], "rpo", max_pairs_per_turn=3, seed=seed)
        picks[seed] = next(p.id for p in kept if p.margin == 2)
    assert set(picks.values()) == {"t0/0>1", "t0/1>0"}
    with pytest.raises(ValueError, match="min_margin"):
        build_pairs([turn], "rpo", min_margin=0)
    with pytest.raises(ValueError, match="unknown pair strategy"):
        build_pairs([turn], "dpo")


def test_non_reversible_constraint_is_left_out():
    # Constraint 0 has no reversal: a chosen response failing it gets a prompt without it.
    turn = turn_from_row(row([(0, 1), (1, 0), (0, 0)], constraints=(BULLETS, NO_COMMA)))
    assert plans(build_pairs([turn], "rpo")) == [
        (0, 1, 1, (), (0,)),
        (0, 2, 1, (), (0,)),
        (1, 0, 2, (1,), ()),
        (1, 2, 1, (1,), ()),
        (2, 0, 1, (1,), (0,)),
        # 2 over 1: only constraint 1 is left and both fail it, so margin 0: no pair.
    ]
    pair = build_pairs([turn], "rpo")[0]
    assert "bullet" not in pair.prompt[-1]["content"]
    assert pair.to_row()["dropped"] == [0]


def test_free_text_constraints_need_a_reverser():
    calls = []

    def reverser(text):
        calls.append(text)
        return f"Do the opposite of: {text}"

    sea = {"text": "Mention the sea."}
    rows = [row([(1, 0), (0, 1)], constraints=(sea, NO_COMMA), id=f"t{k}") for k in range(2)]
    turns = [turn_from_row(r) for r in rows]
    pairs = build_pairs(turns, "rpo", reverser=reverser)
    assert plans(pairs)[:2] == [(0, 1, 2, (1,), ()), (1, 0, 2, (0,), ())]
    assert "- Do the opposite of: Mention the sea." in pairs[1].prompt[-1]["content"]
    assert calls == ["Mention the sea."]  # asked once per text, not once per pair
    # Without a reverser a failed free-text constraint is left out, like a non-reversible id.
    assert plans(build_pairs(turns[:1], "rpo")) == [(0, 1, 2, (1,), ()), (1, 0, 1, (), (0,))]


def test_unanimous_constraints():
    # Constraint 1 passes everywhere, constraint 2 fails everywhere: they separate nothing.
    turn = turn_from_row(row([(1, 1, 0), (0, 1, 0)]))
    kept = build_pairs([turn], "rpo")
    assert plans(kept) == [(0, 1, 1, (2,), ()), (1, 0, 1, (0, 2), ())]
    left_out = build_pairs([turn], "rpo", keep_unanimous=False)
    assert plans(left_out) == [(0, 1, 1, (), (1, 2)), (1, 0, 1, (0,), (1, 2))]
    assert len(left_out[0].constraints) == 1
    # Without the constraint nobody passes, response 0 becomes perfect.
    assert build_pairs([turn], "dpo_perfect") == []
    assert plans(build_pairs([turn], "dpo_perfect", keep_unanimous=False)) == [
        (0, 1, 1, (), (1, 2))
    ]


def test_system_slot_and_history():
    history = [{"role": "user", "content": "Hi."}, {"role": "assistant", "content": "Hello."}]
    r = row([(1, 0), (0, 1)], constraints=(NO_COMMA, LOWER), system="Be brief.", history=history)
    r["constraint_slot"] = "system"
    pair = build_pairs([turn_from_row(r)], "rpo")[0]
    assert pair.prompt == render(
        "Describe the sea.", pair.constraints, "system", "Be brief.", history
    )
    assert pair.prompt[0]["role"] == "system" and "capital letter" in pair.prompt[0]["content"]
    assert pair.prompt[1:3] == history and pair.prompt[-1]["content"] == "Describe the sea."


# --- pair noise ------------------------------------------------------------------------


def test_pair_noise_by_hand():
    # Judged as in the issue's example; truly, response 0 passes all three.
    judged = [(1, 1, 0), (1, 0, 1), (0, 0, 0)]
    truth = [(1, 1, 1), (1, 0, 1), (0, 0, 0)]
    turn = turn_from_row(row(judged, truth=truth))
    rpo = pair_stats([turn], build_pairs([turn], "rpo"))
    # Response 0's prompts reverse constraint 2, which it truly passes: 2 of 6 pairs noisy;
    # in both it still fails fewer (1) than the rejected (2): no inversion.
    assert rpo["pair_noise"] == 2 / 6 and rpo["pair_inversion"] == 0
    assert rpo["pairs_with_true_verdicts"] == 6
    dpo = pair_stats([turn], build_pairs([turn], "dpo_count"))
    assert dpo["pair_noise"] == 1 / 2  # response 1, chosen over 2, truly fails constraint 1
    assert dpo["pair_inversion"] == 0  # truly 3 > 0 and 2 > 0 constraints passed
    # Truth reversed: the chosen truly passes fewer constraints in both dpo_count pairs.
    flipped = turn_from_row(row(judged, truth=[(0, 0, 0), (1, 0, 1), (1, 1, 1)]))
    assert pair_stats([flipped], build_pairs([flipped], "dpo_count"))["pair_inversion"] == 1.0


# --- property test ---------------------------------------------------------------------

MATRICES = st.integers(1, 5).flatmap(
    lambda k: st.tuples(
        st.lists(st.lists(st.booleans(), min_size=k, max_size=k), min_size=1, max_size=6),
        st.lists(st.booleans(), min_size=k, max_size=k),
    )
)


@settings(max_examples=150, deadline=None)
@given(MATRICES)
def test_strategies_on_random_verdicts(case):
    matrix, reversible = case
    constraints = [c if ok else BULLETS for c, ok in zip(POOL, reversible, strict=False)]
    turn = turn_from_row(row(matrix, constraints=constraints))
    distinct = {tuple(v) for v in matrix}
    built = {s: build_pairs([turn], s) for s in PAIR_STRATEGIES}
    for strategy in ("rpo", "rpo_one_way", "drop_failed"):
        for p in built[strategy]:
            chosen, rejected = matrix[p.chosen], matrix[p.rejected]
            shown = [k for k in range(len(constraints)) if k not in p.dropped]
            # Under the rewritten prompt the chosen passes everything ...
            assert all(chosen[k] != (k in p.reversed) for k in shown)
            # ... and the rejected fails exactly `margin` constraints.
            assert sum(rejected[k] == (k in p.reversed) for k in shown) == p.margin >= 1
            assert set(p.reversed) | set(p.dropped) == {k for k, ok in enumerate(chosen) if not ok}
            if strategy != "drop_failed":
                assert all(reversible[k] for k in p.reversed)
                assert all(not reversible[k] for k in p.dropped)
    # Input-side pairs: one per distinct failing response, the same response on both sides;
    # it passes everything under its own prompt and fails `margin` under the original.
    for p in built["iopo"]:
        vector = matrix[p.chosen]
        assert p.rejected == p.chosen and p.rejected_prompt is not None
        assert all(vector[k] != (k in p.reversed) for k in range(len(vector)) if k not in p.dropped)
        assert p.margin == sum(not ok for ok in vector) >= 1 and p.rejected_dropped == ()
    assert len(built["iopo"]) == sum(1 for v in distinct if not all(v))
    ordered = {s: {(p.chosen, p.rejected) for p in built[s]} for s in PAIR_STRATEGIES}
    assert ordered["rpo_one_way"] == ordered["dpo_count"]
    # the placebo: dpo_count's pairs, some swapped
    assert {frozenset(p) for p in ordered["dpo_shuffled"]} == {
        frozenset(p) for p in ordered["dpo_count"]
    }
    assert ordered["dpo_perfect"] <= ordered["dpo_count"]
    assert ordered["drop_failed"] <= ordered["rpo"]
    # the swapped-prompts control: rpo's pairs (some left out), each under another prompt
    # of its turn; with its mirror there, the chosen fails what the mirror's rejected fails
    own = {p.id: p for p in built["rpo"]}
    for p in built["rpo_swapped_prompts"]:
        q = own[p.id]
        assert (p.chosen, p.rejected, p.margin) == (q.chosen, q.rejected, q.margin)
        assert p.prompt != q.prompt
    if all(reversible):
        assert ordered["rpo_swapped_prompts"] == ordered["rpo"]
        for p in built["rpo_swapped_prompts"]:
            assert set(p.reversed) == {k for k, ok in enumerate(matrix[p.rejected]) if not ok}
    assert len(built["dpo_count"]) == sum(
        1 for a, b in combinations(distinct, 2) if sum(a) != sum(b)
    )
    perfect = any(all(v) for v in distinct)
    assert len(built["dpo_perfect"]) == (len(distinct) - 1 if perfect else 0)
    if all(reversible):
        assert len(built["rpo"]) == 2 * len(list(combinations(distinct, 2)))
        for p in built["rpo"]:
            pair = zip(matrix[p.chosen], matrix[p.rejected], strict=True)
            assert p.margin == sum(a != b for a, b in pair)
        assert len(built["rpo"]) >= len(built["dpo_count"]) >= len(built["dpo_perfect"])


# --- files, CLI, bad input -------------------------------------------------------------


def write_samples(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_cli_writes_pairs_and_stats(tmp_path):
    samples = write_samples(
        tmp_path / "samples.jsonl",
        [row([(1, 1, 0), (1, 0, 1), (0, 0, 0)], id="a"), row([(1, 1, 1), (1, 1, 1)], id="b")],
    )
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    out = tmp_path / "out" / "pairs.jsonl"
    args = parser.parse_args(
        ["pairs", "--samples", str(samples), "--strategy", "rpo", "--out", str(out)]
        + ["--max-pairs-per-turn", "4", "--seed", "1"]
    )
    args.func(args)
    stats = json.loads(stats_path(out).read_text())
    assert stats_path(out) == tmp_path / "out" / "pairs.stats.json"
    assert stats["pairs"] == 4 and stats["responses"] == 5
    assert stats["share_turns_with_pair"] == 0.5  # turn b: identical vectors, no pair
    assert stats["options"]["max_pairs_per_turn"] == 4 and stats["strategy"] == "rpo"
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == [
        p.id for p in build_pairs(read_samples(samples), "rpo", max_pairs_per_turn=4, seed=1)
    ]
    data = load_pairs(out)
    assert len(data) == 4 and data[0]["prompt"] == rows[0]["prompt"]
    assert data[0]["chosen"] == rows[0]["chosen"] and data.column_names[:7] == [
        "id",
        "prompt",
        "chosen",
        "rejected",
        "margin",
        "strategy",
        "reversed",
    ]
    trl_form = load_pairs(out, as_messages=True)
    assert trl_form[0]["chosen"] == [{"role": "assistant", "content": rows[0]["chosen"]}]


BAD = [
    (lambda r: r.pop("task"), "'task' is missing"),
    (
        lambda r: r["responses"][1]["verdicts"].pop(),
        "'responses[1].verdicts' has 2 verdicts for 3",
    ),
    (
        lambda r: r["constraints"][2].update(id="length:words"),
        "'constraints[2].id' is invalid: unknown instruction id",
    ),
    (
        lambda r: r["responses"][0]["verdicts"].__setitem__(1, 1),
        "'responses[0].verdicts[1]' must be true or false",
    ),
    (lambda r: r.update(constraint_slot="assistant"), "'constraint_slot' must be one of"),
    (
        lambda r: r["constraints"][0]["kwargs"].update(x=1),
        "'constraints[0].id' is invalid: punctuation:no_comma: unexpected kwarg",
    ),
    (
        lambda r: r["responses"][0].update(true_verdicts=[True] * 3),
        "must give true_verdicts for every",
    ),
    (lambda r: r["history"].append({"role": "system", "content": "x"}), "'history[0].role'"),
    (lambda r: r.update(responses=[]), "'responses' is empty: a turn needs responses"),
    (lambda r: r.update(unjudged=[3]), "'unjudged[0]' must be a response index, got 3"),
    (
        lambda r: r.update(unjudged=[0]),
        "'responses[0].verdicts' must be null: an unjudged response has no",
    ),
]


def test_a_turn_with_an_unjudged_response_gets_no_pairs_and_is_counted(tmp_path):
    """An LLM judge could not judge response 1 of turn b (verdicts null): turn b is left
    out, the judged turn a gives the pairs it gives alone, and the statistics count b."""
    b = row([(1, 1, 0), (0, 0, 0), (0, 1, 1)], id="b", unjudged=[1])
    b["responses"][1]["verdicts"] = None
    a = row([(1, 1, 0), (1, 0, 1), (0, 0, 0)], id="a")
    both = run(write_samples(tmp_path / "both.jsonl", [a, b]), "rpo", tmp_path / "both.out")
    alone = run(write_samples(tmp_path / "a.jsonl", [a]), "rpo", tmp_path / "a.out")
    assert (tmp_path / "both.out").read_text() == (tmp_path / "a.out").read_text()
    assert (both["turns_unjudged"], both["responses_unjudged"]) == (1, 1)
    assert both["turns"] == alone["turns"] == 1 and "turns_unjudged" not in alone
    (turn,) = [t for t in read_samples(tmp_path / "both.jsonl") if t.id == "b"]
    assert turn.unjudged == (1,)


@pytest.mark.parametrize(("spoil", "message"), BAD)
def test_bad_samples_name_file_line_and_field(tmp_path, spoil, message):
    bad = row([(1, 1, 0), (1, 0, 1), (0, 0, 0)], id="bad")
    spoil(bad)
    samples = write_samples(tmp_path / "s.jsonl", [row([(1, 0, 0), (0, 0, 0)]), bad])
    out = tmp_path / "pairs.jsonl"
    out.write_text("previous\n")
    with pytest.raises(ValueError) as err:
        run(samples, "rpo", out)
    assert f"{samples}:2: " in str(err.value) and message in str(err.value)
    assert out.read_text() == "previous\n" and not stats_path(out).exists()


def test_bad_lines_and_repeated_ids(tmp_path):
    samples = tmp_path / "s.jsonl"
    samples.write_text(json.dumps(row([(1,), (0,)], constraints=(NO_COMMA,))) + "\n\n{oops\n")
    with pytest.raises(ValueError, match=r"s.jsonl:3: not valid JSON"):
        read_samples(samples)
    write_samples(samples, [row([(1,), (0,)], constraints=(NO_COMMA,))] * 2)
    with pytest.raises(ValueError, match=r"s.jsonl:2: field 'id' is 't0', which repeats line 1"):
        read_samples(samples)


# --- real samples, rule judge ----------------------------------------------------------

TASKS = [
    "Describe your favourite season.",
    "Give advice to a new gardener.",
    "Write a short note to a friend about a trip.",
    "Explain why the sky is blue.",
]
REAL = [NO_COMMA, LOWER, WORDS, SUN]


@pytest.fixture(scope="module")
def real_turns(prepared_model_dir):
    import torch

    from rpo_bench.rollout.hf import HFBackend
    from rpo_bench.rollout.settings import GenerationSettings

    torch.set_num_threads(1)
    constraints = [from_ifeval(c["id"], c["kwargs"]) for c in REAL]
    backend = HFBackend(str(prepared_model_dir), batch_size=8)
    chats = [render(t, constraints, "user") for t in TASKS]
    settings = GenerationSettings(temperature=1.0, max_new_tokens=32, seed=0, n=4)
    rows = []
    for k, (task, texts) in enumerate(zip(TASKS, backend.generate(chats, settings), strict=True)):
        responses = [{"text": t, "verdicts": [c.check(t) for c in constraints]} for t in texts]
        rows.append(
            {
                "id": f"real{k}",
                "history": [],
                "task": task,
                "constraints": REAL,
                "constraint_slot": "user",
                "responses": responses,
            }
        )
    return rows


def test_rpo_rule_invariant_on_real_samples(real_turns, tmp_path):
    turns = [turn_from_row(r) for r in real_turns]
    pairs = build_pairs(turns, "rpo")
    assert len(pairs) >= 8  # the samples differ: pairs must come out
    for pair in pairs:
        rule_invariant(pair)
        assert pair.prompt == render(pair.turn.task, pair.constraints, "user")
    # The same through the files.
    samples = write_samples(tmp_path / "samples.jsonl", real_turns)
    stats = run(samples, "rpo", tmp_path / "pairs.jsonl")
    assert stats["pairs"] == len(pairs) and stats["pair_noise"] is None
    assert len(load_pairs(tmp_path / "pairs.jsonl")) == len(pairs)
    # Yield order the issue expects, on these samples.
    count = {s: len(build_pairs(turns, s)) for s in PAIR_STRATEGIES}
    assert count["rpo"] > count["dpo_count"] >= count["dpo_perfect"]


def test_the_placebo_swaps_half_of_dpo_counts_pairs_seeded(real_turns):
    real_turns = [turn_from_row(r) for r in real_turns]
    dpo = {p.id.rsplit("/", 1)[0] + "/" + "".join(sorted(p.id.rsplit("/", 1)[1].split(">"))): p
           for p in build_pairs(real_turns, "dpo_count")}  # fmt: skip
    shuffled = {s: build_pairs(real_turns, "dpo_shuffled", seed=s) for s in range(10)}
    swapped = 0
    for pairs in shuffled.values():
        assert len(pairs) == len(dpo)
        for p in pairs:
            turn, sides = p.id.rsplit("/", 1)
            original = dpo[turn + "/" + "".join(sorted(sides.split(">")))]
            assert (p.prompt, p.margin) == (original.prompt, original.margin)
            assert {p.chosen, p.rejected} == {original.chosen, original.rejected}
            swapped += p.chosen != original.chosen
    assert 0.35 < swapped / (10 * len(dpo)) < 0.65  # probability 0.5, over 10 seeds' pairs
    again = build_pairs(real_turns, "dpo_shuffled", seed=0)
    assert [p.id for p in again] == [p.id for p in shuffled[0]]  # seeded
    assert [p.id for p in shuffled[0]] != [p.id for p in shuffled[1]]


def test_swapped_prompts_show_each_pair_its_mirrors_prompt(real_turns):
    from rpo_bench.train.examples import turn_of

    turns = [turn_from_row(r) for r in real_turns]
    rpo = {p.id: p for p in build_pairs(turns, "rpo")}
    swapped = build_pairs(turns, "rpo_swapped_prompts")
    assert len(swapped) == len(rpo) >= 8  # every constraint reversible: every mirror is there
    for p in swapped:
        own = rpo[p.id]
        mirror = rpo[f"{p.turn.id}/{p.rejected}>{p.chosen}"]
        assert turn_of(p.id) == p.turn.id and p.strategy == "rpo_swapped_prompts"
        assert (p.chosen, p.rejected, p.margin) == (own.chosen, own.rejected, own.margin)
        shown = (p.prompt, p.reversed, p.dropped, p.constraints)
        assert shown == (mirror.prompt, mirror.reversed, mirror.dropped, mirror.constraints)
        assert p.prompt != own.prompt
        row_ = p.to_row()
        assert row_["prompt"] == mirror.prompt and row_["reversed"] == list(mirror.reversed)
        # the checkers on the texts: under the shown prompt the roles are the mirror's, so
        # the chosen fails exactly the mirror's margin and the rejected passes everything
        chosen, rejected = p.turn.responses[p.chosen], p.turn.responses[p.rejected]
        assert sum(not c.check(chosen) for c in p.constraints) == mirror.margin >= 1
        assert all(c.check(rejected) for c in p.constraints)
    assert build_pairs(turns, "rpo_swapped_prompts", seed=1) == swapped  # no choice was made


def test_swapped_prompts_without_a_mirror_fall_back_or_leave_the_pair_out(capsys):
    from rpo_bench.pairs.examples import swap_prompts
    from rpo_bench.pairs.strategy import rpo as rpo_plan

    # four distinct vectors, so 12 rpo pairs under 4 prompts; the cap keeps one, no mirror
    many = turn_from_row(row([(1, 1, 0), (1, 0, 1), (0, 0, 0), (1, 1, 1)], id="many"))
    prompts = {p.id: p.prompt for p in build_pairs([many], "rpo")}
    assert len({str(v) for v in prompts.values()}) == 4
    picked = set()

    def kept(pair):  # what the control keeps of an rpo pair
        return pair.id, pair.chosen, pair.rejected, pair.margin

    for seed in range(8):
        (rpo,) = build_pairs([many], "rpo", max_pairs_per_turn=1, seed=seed)
        (p,) = build_pairs([many], "rpo_swapped_prompts", max_pairs_per_turn=1, seed=seed)
        assert kept(p) == kept(rpo)
        assert p.prompt in prompts.values() and p.prompt != rpo.prompt  # the turn's, not its own
        again = build_pairs([many], "rpo_swapped_prompts", max_pairs_per_turn=1, seed=seed)
        assert again == [p]  # same seed, same prompt
        picked.add(str(p.prompt))
    assert len(picked) > 1  # the fallback is a seeded choice among the turn's other prompts
    # BULLETS cannot be reversed: B over A (they differ only there) has margin 0 and is not
    # made, so A over B has no mirror; in `alone` no other prompt is left, so it is left out
    alone = turn_from_row(row([(1, 1), (1, 0)], constraints=(NO_COMMA, BULLETS), id="alone"))
    three = turn_from_row(
        row([(1, 1, 1), (1, 1, 0), (0, 1, 1)], constraints=(NO_COMMA, LOWER, BULLETS), id="three")
    )
    assert [p.id for p in build_pairs([alone], "rpo")] == ["alone/0>1"]
    rpo = {p.id: p for p in build_pairs([alone, three], "rpo")}
    assert "three/1>0" not in rpo
    pairs, left_out = swap_prompts([alone, three], "rpo_swapped_prompts", rpo_plan)
    assert left_out == 1 and [p.id for p in pairs] == [i for i in rpo if i != "alone/0>1"]
    fallback = next(p for p in pairs if p.id == "three/0>1")
    assert fallback.prompt != rpo["three/0>1"].prompt
    assert fallback.prompt in [q.prompt for q in rpo.values() if q.turn.id == "three"]
    assert pairs[-1].id == "three/2>1" and pairs[-1].prompt == rpo["three/1>2"].prompt  # mirror
    assert build_pairs([alone, three], "rpo_swapped_prompts") == pairs
    assert "1 pair(s) left out" in capsys.readouterr().err  # the count is not lost


def with_truth(rows, flip, seed=0):
    """Copies whose judged verdicts flip with probability `flip`; the truth kept beside."""
    rng = random.Random(seed)
    out = json.loads(json.dumps(rows))
    for r in out:
        for resp in r["responses"]:
            resp["true_verdicts"] = resp["verdicts"]
            resp["verdicts"] = [v != (rng.random() < flip) for v in resp["verdicts"]]
    return [turn_from_row(r) for r in out]


def test_pair_noise_on_real_samples(real_turns):
    clean = with_truth(real_turns, flip=0.0)
    assert pair_stats(clean, build_pairs(clean, "rpo"))["pair_noise"] == 0
    dpo = build_pairs(clean, "dpo_count")
    imperfect = sum(1 for p in dpo if not all(p.turn.verdicts[p.chosen]))
    assert pair_stats(clean, dpo)["pair_noise"] == imperfect / len(dpo) > 0
    noisy = with_truth(real_turns, flip=0.3)
    pairs = build_pairs(noisy, "rpo")
    # Independently: re-check each chosen text against its prompt's constraints.
    wrong = sum(
        1 for p in pairs if not all(c.check(p.turn.responses[p.chosen]) for c in p.constraints)
    )
    assert pair_stats(noisy, pairs)["pair_noise"] == wrong / len(pairs) > 0


def test_every_strategy_declares_its_training_loss():
    from rpo_bench.pairs import PAIR_STRATEGIES, STRATEGIES
    from rpo_bench.train.config import example_kind

    losses = {name: spec.loss for name, spec in STRATEGIES.items()}
    assert {s for s, loss in losses.items() if loss == "dpo"} == {
        "dpo_count",
        "dpo_perfect",
        "dpo_shuffled",
        "iopo",
    }
    # single-response strategies train with the loss named after their example kind
    assert {s: losses[s] for s in set(STRATEGIES) - set(PAIR_STRATEGIES)} == {
        "sft_chosen": "sft", "sft_golden": "sft", "kto": "kto", "kto_reversed": "kto"
    }  # fmt: skip
    # the kind a strategy builds is the kind its loss trains on
    assert all(spec.kind == example_kind(spec.loss) for spec in STRATEGIES.values())
