"""System prompts with free-text constraint lists, the data the paper trains RPO on.

Each prompt is a role profile plus 6 to 12 constraints of the types content, format, style,
role, logic and action, and the user turns of a conversation under it. They come from a
user's JSONL file (`read_system_prompts`) or from a teacher LLM (`generate_system_prompts`,
as the authors made theirs). One JSON object per line:

    {"id": "sp-1", "system": "You are a travel agent for Wuhan ...",
     "criteria": [{"criteria_id": 1, "criteria_content": "Answer in English.",
                   "criteria_type": "format"}, ...],
     "turns": ["Where should I eat tonight?", "And tomorrow morning?"]}

`criteria` follows SysBench's checklist items (`criteria_id`, `criteria_content`,
`criteria_type`), so a SysBench-style list can be pasted in; ids are unique integers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rpo_bench.constraints import Criterion, TextConstraint
from rpo_bench.data.conversations import PlannedTurn, TrainingConversation
from rpo_bench.fields import Field
from rpo_bench.jsonl import iter_rows, write_jsonl
from rpo_bench.llm import CachedCompleter, Completer
from rpo_bench.textcache import TextCache

TYPES = ("content", "format", "style", "role", "logic", "action")
MIN_CONSTRAINTS, MAX_CONSTRAINTS = 6, 12


@dataclass(frozen=True)
class SystemPrompt:
    """A role profile, its constraints and the user turns played under it."""

    id: str
    system: str
    criteria: tuple[Criterion, ...]
    turns: tuple[str, ...]

    def to_row(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "system": self.system,
            "criteria": [
                {"criteria_id": c.id, "criteria_content": c.content, "criteria_type": c.type}
                for c in self.criteria
            ],
            "turns": list(self.turns),
        }


def _text(row: dict[str, Any], key: str, at: Field) -> str:
    value = row.get(key)
    if not isinstance(value, str) or not value.strip():
        raise at(key).error("must be a non-empty string")
    return value


def prompt_from_row(row: dict[str, Any], where: str) -> SystemPrompt:
    """One validated system prompt; errors name `where` (file:line) and the field."""
    at = Field(where)
    criteria_raw = row.get("criteria")
    if not isinstance(criteria_raw, list) or not criteria_raw:
        raise at("criteria").error("must be a non-empty list")
    criteria = []
    for i, item in enumerate(criteria_raw):
        c_at = at("criteria")(i)
        if not isinstance(item, dict):
            raise c_at.error("must be an object")
        cid = item.get("criteria_id")
        if not isinstance(cid, int) or isinstance(cid, bool):
            raise c_at("criteria_id").error("must be an integer")
        kind = item.get("criteria_type")
        if kind not in TYPES:
            raise c_at("criteria_type").error(f"is {kind!r}, not one of {TYPES}")
        criteria.append(Criterion(cid, _text(item, "criteria_content", c_at), kind))
    ids = [c.id for c in criteria]
    if len(set(ids)) != len(ids):
        raise at("criteria").error(f"repeats a criteria_id: {ids}")
    turns = row.get("turns")
    if (
        not isinstance(turns, list)
        or not turns
        or not all(isinstance(t, str) and t.strip() for t in turns)
    ):
        raise at("turns").error("must be a non-empty list of non-empty strings")
    return SystemPrompt(
        _text(row, "id", at), _text(row, "system", at), tuple(criteria), tuple(turns)
    )


def read_system_prompts(path: str | Path) -> list[SystemPrompt]:
    """Every system prompt of a JSONL file; errors name file:line and the field."""
    prompts = [prompt_from_row(row, f"{path}:{n}") for n, row in iter_rows(path)]
    seen: set[str] = set()
    for p in prompts:
        if p.id in seen:
            raise ValueError(f"{path}: id {p.id!r} appears twice")
        seen.add(p.id)
    if not prompts:
        raise ValueError(f"{path}: no system prompts")
    return prompts


def write_system_prompts(path: str | Path, prompts: Sequence[SystemPrompt]) -> None:
    write_jsonl(path, (p.to_row() for p in prompts))


def split_conversations(
    prompts: Sequence[SystemPrompt], split: str, n_train: int, n_heldout: int, source: str
) -> list[TrainingConversation]:
    """The split's conversations: the first `n_train` prompts train, the next `n_heldout`
    are held out; too few prompts is an error naming `source`."""
    if len(prompts) < n_train + n_heldout:
        raise ValueError(
            f"{source}: {len(prompts)} system prompts, fewer than data.n_conversations + "
            f"data.heldout_conversations = {n_train + n_heldout}"
        )
    start, n = (0, n_train) if split == "train" else (n_train, n_heldout)
    return to_conversations(prompts[start : start + n], split)


def to_conversations(prompts: Sequence[SystemPrompt], split: str) -> list[TrainingConversation]:
    """Training conversations under the system prompts, the paper's setting: every turn's
    constraints are the prompt's criteria as free text, listed in the system message."""
    return [
        TrainingConversation(
            id=p.id,
            seed_id=p.id,
            split=split,
            turns=tuple(
                PlannedTurn(user, tuple(TextConstraint(c.content) for c in p.criteria))
                for user in p.turns
            ),
            constraint_slot="system",
            system=p.system,
            meta={"criteria_types": [c.type for c in p.criteria]},
        )
        for p in prompts
    ]


# --- generation by a teacher LLM ---------------------------------------------------------------

TEACHER_RULES = f"""\
You write test data for instruction following. Invent one assistant role for the domain \
given, as a system prompt, with {MIN_CONSTRAINTS} to {MAX_CONSTRAINTS} constraints the \
assistant must follow, and {{turns}} user messages of one conversation with it. Use each \
constraint type at least once where it fits: {", ".join(TYPES)}. Each constraint is one \
checkable sentence. Some user messages should tempt the assistant to break a constraint.
Answer with one JSON object and nothing else:
{{{{"system": "...", "criteria": [{{{{"content": "...", "type": "format"}}}}, ...], \
"turns": ["...", ...]}}}}"""

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)


def teacher_messages(domain: str, index: int, turns: int) -> list[dict[str, str]]:
    """The chat that asks the teacher for system prompt `index` of `domain`."""
    return [
        {"role": "system", "content": TEACHER_RULES.format(turns=turns)},
        {
            "role": "user",
            "content": f"Domain: {domain}. Role number {index + 1}: unlike the others.",
        },
    ]


def parse_teacher(text: str, prompt_id: str, turns: int) -> SystemPrompt:
    """The teacher's answer as a validated SystemPrompt; ValueError says what is wrong."""
    fenced = _FENCE.search(text)
    body = fenced.group(1) if fenced else text
    try:
        obj = json.loads(body.strip())
    except json.JSONDecodeError as err:
        raise ValueError(f"teacher answer for {prompt_id}: not JSON ({err.msg})") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("criteria"), list):
        raise ValueError(f"teacher answer for {prompt_id}: not an object with a 'criteria' list")
    criteria = [
        {"criteria_id": i, "criteria_content": c.get("content"), "criteria_type": c.get("type")}
        if isinstance(c, dict)
        else c
        for i, c in enumerate(obj["criteria"], 1)
    ]
    prompt = prompt_from_row(
        {
            "id": prompt_id,
            "system": obj.get("system"),
            "criteria": criteria,
            "turns": obj.get("turns"),
        },
        f"teacher answer for {prompt_id}",
    )
    if not MIN_CONSTRAINTS <= len(prompt.criteria) <= MAX_CONSTRAINTS:
        raise ValueError(f"teacher answer for {prompt_id}: {len(prompt.criteria)} constraints")
    if len(prompt.turns) != turns:
        raise ValueError(f"teacher answer for {prompt_id}: {len(prompt.turns)} turns, not {turns}")
    return prompt


def generate_system_prompts(
    teacher: Completer,
    domains: Sequence[str],
    per_domain: int,
    turns: int = 2,
    cache: TextCache | None = None,
) -> tuple[list[SystemPrompt], int]:
    """(system prompts, answers rejected): `per_domain` per domain from the teacher, each
    answer validated; a rejected answer is counted and left out, never repaired. Valid
    answers are cached by (teacher, prompt sha256), so a rerun costs no calls."""
    asks = [(d, i) for d in domains for i in range(per_domain)]
    chats = [teacher_messages(d, i, turns) for d, i in asks]

    def parse(n: int, text: str) -> SystemPrompt | None:
        domain, i = asks[n]
        slug = re.sub(r"\W+", "-", domain.lower()).strip("-")
        try:
            return parse_teacher(text, f"{slug}-{i + 1}", turns)
        except ValueError:
            return None

    answers = CachedCompleter(teacher, cache).ask(chats, parse)
    prompts = [p for p in answers if p is not None]
    rejected = len(answers) - len(prompts)
    return prompts, rejected
