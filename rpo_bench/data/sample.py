"""The sampling stage: n responses per turn, judged per constraint, written as samples rows.

Conversations are played turn by turn, every live conversation of a turn in one batch.
Each turn's prompt is `prompt.render(task, constraints, slot, system, history)`; the
history holds one reply per earlier turn, the best-scoring sample under the judge (the
authors' "golden" history; ties go to the earlier sample) or simply the first sample.
Turn t is generated with seed `settings.seed + t - 1`, recorded in the row's settings.

A samples row (the pairs stage reads exactly this):
    {"id": "<conversation id>/t<turn>", "system": str (only when set), "history": [messages
     before this turn, as the model saw them], "task", "constraints": [{"id", "kwargs"}],
     "constraint_slot", "responses": [{"text", "verdicts", "true_verdicts" (noise > 0),
     "source" ("teacher", only for a critic-pool reply)}],
     "noise", "settings", plus "turn", "judge", "history_choice", "kept" (the index of
     the response kept in the history) and, where an LLM judge could not judge some
     responses, "unjudged": [their indices] (their "verdicts" are null).
     `rpo_bench.pairs.turn.read_samples` reads and validates it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections.abc import Sequence
from typing import Any

from rpo_bench.data import verifiable
from rpo_bench.data.conversations import TrainingConversation, read_conversations
from rpo_bench.data.prompt import Message, render
from rpo_bench.data.teacher import Teacher, share_of
from rpo_bench.jsonl import no_rows, refuse_empty, warn, write_jsonl
from rpo_bench.judge.noise import NoisyJudge
from rpo_bench.judge.rule import RuleJudge
from rpo_bench.judge.verdicts import ConstraintJudge, VerdictRequest
from rpo_bench.rollout.multiturn import Backend, play_turns
from rpo_bench.rollout.settings import ENGINES, GenerationSettings

HISTORY_CHOICES = ("best", "first", "teacher")


POOLS = ("policy", "critic")


def _below(judged: Sequence[tuple[Any, Any]], threshold: float) -> bool:
    """Whether the policy's best judged response satisfies less than `threshold` of the
    constraints (no judged response at all counts as below)."""
    shares = [share_of(v) for v, _ in judged if v is not None]
    return not shares or max(shares) < threshold


def kept_index(verdicts: Sequence[Sequence[bool] | None], choice: str = "best") -> int:
    """The response kept in the history: most constraints satisfied (first on ties), or 0.
    An unjudged response (None) is kept only when no response was judged."""
    if choice not in HISTORY_CHOICES:
        raise ValueError(f"history choice must be one of {HISTORY_CHOICES}, got {choice!r}")
    if choice == "first":
        return 0
    # "teacher": the row still records the policy's best; the history holds the teacher's
    scores = [-1 if v is None else sum(v) for v in verdicts]
    return scores.index(max(scores))


def sample(
    conversations: Sequence[TrainingConversation],
    backend: Backend,
    settings: GenerationSettings,
    judge: ConstraintJudge | None = None,
    noise: float = 0.0,
    noise_seed: int | None = None,
    history: str = "best",
    teacher: Teacher | None = None,
    pool: str = "policy",
) -> list[dict[str, Any]]:
    """Samples rows for every turn of every conversation, in turn then conversation order.

    `noise` > 0 wraps the judge in `NoisyJudge` (seed `noise_seed`, default settings.seed):
    rows then carry the noisy verdicts, which also choose the history, and the true ones.
    `history="teacher"` keeps `teacher`'s golden reply in the history instead (row field
    `teacher`); a conversation whose teacher reply misses the threshold ends at that turn.
    `pool="critic"` (the authors' critic pool): where the policy's best response satisfies
    less than the teacher's threshold share, the teacher's refined reply joins the turn's
    responses, marked `"source": "teacher"` (off-policy).
    """
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")
    if pool == "critic" and teacher is None:
        raise ValueError('pool "critic" takes its replies from a teacher (history "teacher")')
    judge = judge or RuleJudge()
    if (history == "teacher") != (teacher is not None):
        raise ValueError('history "teacher" needs a teacher, and a teacher needs that history')

    def _id(i: int, t: int) -> str:
        return f"{conversations[i].id}/t{t + 1}"

    noisy = NoisyJudge(judge, noise, settings.seed if noise_seed is None else noise_seed)
    # Each turn's messages are rendered from its task and constraints: with
    # constraint_slot="system" the system message lists that turn's constraints.
    rows: list[dict[str, Any]] = []
    histories: dict[int, list[Message]] = {}  # this turn's, by conversation index

    def chat(i: int, t: int, earlier: list[Message]) -> list[Message]:
        conv, turn = conversations[i], conversations[i].turns[t]
        histories[i] = earlier
        return render(turn.task, turn.constraints, conv.constraint_slot, conv.system, earlier)

    def turn_settings(t: int) -> GenerationSettings:
        return dataclasses.replace(settings, seed=settings.seed + t)

    def generate(t: int, live: list[int], chats: list[list[Message]]) -> list[list[str]]:
        return backend.generate(chats, turn_settings(t))

    def keep(
        t: int, live: list[int], chats: list[list[Message]], replies: list[list[str]]
    ) -> list[int]:
        requests = [
            VerdictRequest(chat, text, conversations[i].turns[t].constraints, _id(i, t), r)
            for i, chat, texts in zip(live, chats, replies, strict=True)
            for r, text in enumerate(texts)
        ]
        judged_all = iter(noisy.judge_with_truth(requests))  # one batch per turn
        golden = (
            teacher.golden(
                chats,
                [conversations[i].turns[t].constraints for i in live],
                noisy,
                [_id(i, t) for i in live],
                t,
            )
            if teacher is not None
            else None
        )
        kept_all: list[int | str | None] = []
        for i, texts in zip(live, replies, strict=True):
            conv, turn = conversations[i], conversations[i].turns[t]
            judged = [next(judged_all) for _ in texts]
            responses = []
            for text, (verdicts, true) in zip(texts, judged, strict=True):
                response: dict[str, Any] = {"text": text, "verdicts": verdicts}
                if noise > 0:
                    response["true_verdicts"] = true
                responses.append(response)
            kept = kept_index([v for v, _ in judged], history)
            row: dict[str, Any] = {"id": _id(i, t)}
            unjudged = [r for r, (v, _) in enumerate(judged) if v is None]
            if conv.system is not None:
                row["system"] = conv.system
            row |= {
                "history": list(histories[i]),
                "task": turn.task,
                "constraints": [c.to_dict() for c in turn.constraints],
                "constraint_slot": conv.constraint_slot,
                "responses": responses,
                "noise": noise,
                "settings": turn_settings(t).to_dict(),
                "turn": t + 1,
                "judge": noisy.name if noise > 0 else judge.name,
                "history_choice": history,
                "kept": kept,
            }
            if unjudged:  # responses the judge could not judge: no verdicts, no pairs
                row["unjudged"] = unjudged
            if golden is not None:
                reply, record = golden[len(kept_all)]
                best = record.pop("best")
                if pool == "critic" and teacher is not None and _below(judged, teacher.threshold):
                    request = VerdictRequest(chats[len(kept_all)], best, turn.constraints,
                                             _id(i, t), len(texts))  # fmt: skip
                    ((verdicts, true),) = noisy.judge_with_truth([request])
                    if verdicts is not None:
                        extra: dict[str, Any] = {"text": best, "verdicts": verdicts}
                        responses.append(extra | ({"true_verdicts": true} if noise > 0 else {})
                                         | {"source": "teacher"})  # fmt: skip
                row["teacher"] = record | {"reply": reply}
                kept_all.append(reply)  # None: the conversation ends here
            else:
                kept_all.append(kept)
            rows.append(row)
        return kept_all

    play_turns([len(c.turns) for c in conversations], chat, generate, keep)
    return rows


# --- CLI --------------------------------------------------------------------------------------


def _run(args: argparse.Namespace) -> None:
    if args.conversations:
        convs = read_conversations(args.conversations)
        path, empty = args.conversations, "an empty samples file"
        refuse_empty(path, convs, "conversations", empty, allow_empty=args.allow_empty)
        if not convs:
            warn(f"{no_rows(path, 'conversations')}; writing an empty {args.out} (--allow-empty)")
    else:
        convs = verifiable.from_args(args)
    settings = GenerationSettings.of(args)
    rows: list[dict[str, Any]] = []
    seconds = 0.0
    if convs:  # no conversations, no model to load
        from rpo_bench.rollout.hf import HFBackend
        from rpo_bench.rollout.settings import engine

        backend = HFBackend(args.model, batch_size=args.batch_size, engine=engine(args.engine))
        start = time.perf_counter()
        rows = sample(convs, backend, settings, noise=args.noise, history=args.history)
        seconds = time.perf_counter() - start
    write_jsonl(args.out, rows)
    verdicts = [v for row in rows for r in row["responses"] for v in r["verdicts"] or ()]
    summary = {
        "conversations": len(convs),
        "rows": len(rows),
        "responses": sum(len(r["responses"]) for r in rows),
        "verdicts_true_share": round(sum(verdicts) / max(len(verdicts), 1), 4),
        "sampling_seconds": round(seconds, 1),
        "out": args.out,
    }
    print(json.dumps(summary))


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `samples`: sample and judge n responses per turn of training conversations."""
    p = subparsers.add_parser(
        "samples", help="sample n responses per turn and judge every constraint"
    )
    verifiable.add_arguments(p)
    p.add_argument("--conversations", default=None, help="read conversations JSONL instead")
    p.add_argument(
        "--allow-empty",
        action="store_true",
        help="an empty --conversations file writes an empty samples file (with a warning), "
        "not an error",
    )
    p.add_argument("--model", default="smollm2-135m", help="embedded name, folder or hub id")
    p.add_argument("--n", type=int, default=4, help="responses per turn")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--noise", type=float, default=0.0, help="verdict flip probability")
    p.add_argument("--history", choices=HISTORY_CHOICES, default="best")
    p.add_argument("--batch-size", type=int, default=16, help="prompts per generate call")
    p.add_argument(
        "--engine",
        default="fast",
        choices=list(ENGINES),
        help="rollout engine (rpo_bench.rollout.settings.ENGINES)",
    )
    p.add_argument("--out", required=True)
    p.set_defaults(func=_run)
    return p
