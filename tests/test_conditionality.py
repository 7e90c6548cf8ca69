"""The conditionality index J (`evaluate.conditionality`): a hand computation, fake repliers
with known J (one that ignores the instruction: 0; a perfect follower: 1; a contrarian:
-1), the items' design, the registry, and one run of the ablation's eval stage on the real
embedded model."""

from __future__ import annotations

import json
import math

import pytest
import torch

from rpo_bench.ablate import config as config_mod
from rpo_bench.constraints import TextConstraint, from_ifeval
from rpo_bench.data.conversations import PlannedTurn, TrainingConversation, write_conversations
from rpo_bench.evaluate import conditionality
from rpo_bench.evaluate.tasks import CONDITIONALITY, task
from rpo_bench.rollout.settings import GenerationSettings

SETTINGS = GenerationSettings(max_new_tokens=16)

NO_COMMA = from_ifeval("punctuation:no_comma", {})
QUOTE = from_ifeval("startend:quotation", {})
POSTSCRIPT = from_ifeval("detectable_content:postscript", {"postscript_marker": "P.S."})
BULLETS = from_ifeval("detectable_format:number_bullet_lists", {"num_bullets": 3})  # no reversal
# a reply that passes each constraint the items can show, original and reversed
FOLLOWS = [
    (NO_COMMA, "one two three"),
    (NO_COMMA.reverse(), "one, two"),
    (QUOTE, '"quoted"'),
    (QUOTE.reverse(), "plain"),
    (POSTSCRIPT, "body\n\nP.S. more"),
    (POSTSCRIPT.reverse(), "body"),
]


def follow(c) -> str:
    return next(reply for shown, reply in FOLLOWS if shown == c)


def row(turn: str, instruction_id: str, passed: bool, passed_rev: bool) -> dict:
    return {"turn": turn, "instruction_id": instruction_id, "pass_original": passed,
            "pass_reversed": passed_rev, "score": int(passed) + int(passed_rev) - 1}  # fmt: skip


def test_the_index_is_youdens_j_by_hand():
    rows = [row("a", "A", True, True), row("b", "A", True, True), row("c", "A", True, False),
            row("a", "B", False, True), row("b", "B", True, True)]  # fmt: skip
    entry = conditionality.index(rows, n_boot=500, seed=1)
    m = entry["metrics"]
    # P(c | c) = 4/5, P(¬c | ¬c) = 4/5: J = 4/5 + 4/5 - 1
    assert m["pass_original"] == pytest.approx(0.8) and m["pass_reversed"] == pytest.approx(0.8)
    assert m["conditionality"] == pytest.approx(0.6)
    assert entry["ci95"][0] <= 0.6 <= entry["ci95"][1]
    assert entry["per_prompt"] == [1.0, 1.0, 0.0, 0.0, 1.0]
    assert sum(entry["per_prompt"]) / 5 == pytest.approx(m["conditionality"])
    a, b = entry["by_constraint"]["A"], entry["by_constraint"]["B"]
    assert (a["n"], b["n"]) == (3, 2)
    assert a["j"] == pytest.approx(1 + 2 / 3 - 1) and b["j"] == pytest.approx(1 / 2 + 1 - 1)
    assert a["ci95"][0] <= a["j"] <= a["ci95"][1] and b["ci95"][0] <= b["j"] <= b["ci95"][1]
    assert (entry["n_items"], entry["n_turns"]) == (5, 3)
    # the report's tables average each metric over seeds: scalars only
    assert set(m) == {"conditionality", "pass_original", "pass_reversed"}
    assert all(isinstance(v, float) for v in m.values())
    assert entry == conditionality.index(rows, n_boot=500, seed=1)  # seeded


def test_no_items_give_nan_not_an_error():
    entry = conditionality.index([])
    assert math.isnan(entry["metrics"]["conditionality"]) and entry["per_prompt"] == []
    assert entry["by_constraint"] == {} and entry["n_items"] == 0


def conversations() -> list[TrainingConversation]:
    """Two held-out conversations (one with its constraints in the system message); a
    non-reversible and a free-text constraint, and a second turn, give no item."""
    rule = TextConstraint("Be polite.")
    first = PlannedTurn("Name three colours.", (NO_COMMA, BULLETS, QUOTE))
    second = PlannedTurn("Make it shorter.", (NO_COMMA, BULLETS, QUOTE, POSTSCRIPT))
    return [
        TrainingConversation("c1", "s1", "heldout", (first, second)),
        TrainingConversation("c2", "s2", "heldout",
                             (PlannedTurn("Say hi.", (POSTSCRIPT, rule)),),
                             constraint_slot="system", system="You are terse."),
    ]  # fmt: skip


class Replier:
    """A fake model: `reply(chat)` for each chat, and the chats it was shown."""

    def __init__(self, reply):
        self.reply, self.seen = reply, []

    def generate(self, chats, settings):
        assert settings.temperature == 0 and settings.n == 1  # greedy
        self.seen += chats
        return [[self.reply(c)] for c in chats]


def shown(chat) -> list:
    """The constraints whose description a chat shows."""
    text = "\n".join(m["content"] for m in chat)
    return [c for c, _ in FOLLOWS if f"- {c.describe()}" in text]


@pytest.fixture
def heldout(tmp_path):
    path = tmp_path / "conversations.jsonl"
    write_conversations(path, conversations())
    return path


def test_items_are_first_turns_one_reversible_constraint_each(heldout):
    engine = Replier(lambda chat: "same reply")
    rows = conditionality.play(heldout, engine, SETTINGS)
    assert [r["key"] for r in rows] == ["c1/t1/c0", "c1/t1/c2", "c2/t1/c0"]
    ids = ["punctuation:no_comma", "startend:quotation", "detectable_content:postscript"]
    assert [r["instruction_id"] for r in rows] == ids
    # each chat shows exactly one constraint: the original, then its reversal, same slot
    assert [shown(c) for c in engine.seen] == [[NO_COMMA], [NO_COMMA.reverse()], [QUOTE],
                                               [QUOTE.reverse()], [POSTSCRIPT],
                                               [POSTSCRIPT.reverse()]]  # fmt: skip
    system = rows[2]["prompt_reversed"]
    assert system[0]["role"] == "system" and POSTSCRIPT.reverse().describe() in system[0]["content"]
    assert system[-1] == {"role": "user", "content": "Say hi."}
    assert rows[0]["prompt_original"][-1]["content"].startswith("Name three colours.")


@pytest.mark.parametrize(
    ("name", "reply", "j"),
    [
        ("ignores the instruction", lambda chat: "One, two.", 0.0),
        ("follows it", lambda chat: follow(shown(chat)[0]), 1.0),
        ("does the opposite", lambda chat: follow(shown(chat)[0].reverse()), -1.0),
    ],
)
def test_fake_repliers_score_their_known_index(heldout, name, reply, j):
    entry = conditionality.measure(heldout, Replier(reply), SETTINGS, n_boot=200)
    m = entry["metrics"]
    assert m["conditionality"] == j, name
    assert entry["ci95"] == [j, j]  # every item scores j: no spread
    assert all(c["j"] == j for c in entry["by_constraint"].values())
    assert len(entry["rows"]) == len(entry["per_prompt"]) == 3
    if j == 0:  # the same reply under c and ¬c passes exactly one of them
        assert m["pass_original"] + m["pass_reversed"] == 1


def test_the_task_is_registered(tmp_path):
    assert task("conditionality").kind == CONDITIONALITY and task("conditionality").engine
    path = tmp_path / "c.yaml"
    path.write_text("name: x\neval: {tasks: [heldout, conditionality]}\n")
    assert config_mod.load(path).eval.tasks == ("heldout", "conditionality")


def test_the_eval_stage_measures_the_real_model(prepared_model_dir, tmp_path):
    """The ablation's eval stage on the embedded model: 2 held-out conversations, 16 new
    tokens; per-item rows written, J in [-1, 1], the eval.json entry the report reads."""
    from rpo_bench.ablate.config import Eval
    from rpo_bench.ablate.stages import CONVERSATIONS, Context, evaluate_model
    from rpo_bench.data import verifiable
    from rpo_bench.jsonl import read_jsonl

    heldout = tmp_path / "conversations"
    heldout.mkdir()
    write_conversations(CONVERSATIONS.path(heldout),
                        verifiable.build(2, turns=1, k=2, seed=3, split="heldout"))  # fmt: skip
    out = tmp_path / "eval"
    out.mkdir()
    e = Eval(tasks=("conditionality",), max_new_tokens=16, batch_size=8, bootstrap=200)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        evaluate_model(out, Context(root=tmp_path), model=str(prepared_model_dir), eval=e,
                       heldout=heldout, judge=None)  # fmt: skip
    finally:
        torch.set_num_threads(before)
    rows = read_jsonl(out / "samples_conditionality.jsonl")
    entry = json.loads((out / "eval.json").read_text())["conditionality"]
    assert 1 <= len(rows) <= 4 and len(entry["per_prompt"]) == len(rows)
    assert all(r["pass_original"] in (True, False) and r["score"] in (-1, 0, 1) for r in rows)
    assert all(r["reply_original"] is not None and r["reply_reversed"] is not None for r in rows)
    j = entry["metrics"]["conditionality"]
    assert -1 <= j <= 1 and entry["ci95"][0] <= j <= entry["ci95"][1]
    assert j == pytest.approx(sum(r["score"] for r in rows) / len(rows))
