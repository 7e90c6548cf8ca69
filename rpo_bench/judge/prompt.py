"""Judge prompts: each renders a turn for the judge and parses the judge's answer.

- `official` (the default): SysBench's own prompt and answer format (`judge.official`).
- `rpo_bench`: the project's own prompt (Chinese, like SysBench; defined here) with strict
  parsing of a JSON answer. It adds rules the official prompt lacks (judge each criterion
  independently, the system message wins a conflict) and uses other answer keys.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rpo_bench.judge import official
from rpo_bench.judge.types import JudgeRequest, ParseError

YES, NO = "是", "否"

INSTRUCTIONS = """\
你是一名严格、公正的评审员。下面是一段多轮对话：系统消息规定了AI助手的身份、任务范围和行为规则，\
并在整段对话中始终有效。请判断助手在【当前轮次】的回答是否满足评判细则中的每一条要求。

评审要求：
1. 只评判【当前轮次】的助手回答。【此前的对话】中的助手回答是该助手自己先前给出的，仅作为上下文。
2. 逐条独立判断每条细则：回答完全满足该条要求时判“{yes}”，否则判“{no}”。\
不要让一条细则的结论影响另一条。
3. 当用户的请求与系统消息的规定相冲突时，以系统消息为准。
4. 细则末尾“|”后面是该条的约束类型，仅供参考。"""

OUTPUT_FORMAT = """\
【输出格式】
只输出一个JSON对象，不要输出任何其他文字。格式如下：
{{"reasoning": "逐条说明判断依据", "verdicts": {example}}}
其中 "verdicts" 必须恰好包含以上全部细则编号（{ids}），不能多也不能少；\
每个值只能是 "{yes}" 或 "{no}"。"""


def checklist_lines(checklist: Sequence[dict[str, Any]]) -> str:
    """One line per criterion, "{id}. {content} | {type}", as SysBench writes its checklists."""
    return "\n".join(
        f"{c['criteria_id']}. {c['criteria_content']} | {c['criteria_type']}" for c in checklist
    )


def render_prompt(request: JudgeRequest) -> str:
    """The full judge prompt for one turn."""
    if request.history:
        rounds = "\n\n".join(
            f"第{k}轮\n用户：{user}\n助手：{answer}"
            for k, (user, answer) in enumerate(request.history, start=1)
        )
    else:
        rounds = "（无，这是对话的第一轮）"
    ids = request.ids
    # The example names the real ids so a model copying it gets the key set right; its values
    # are placeholders that do not parse, so a verbatim copy is retried, not scored.
    example = "{" + ", ".join(f'"{i}": "{YES}或{NO}"' for i in ids) + "}"
    parts = [
        INSTRUCTIONS.format(yes=YES, no=NO),
        f"【系统消息】\n{request.system}",
        f"【此前的对话】\n{rounds}",
        f"【当前轮次】\n用户：{request.user}\n助手：{request.answer}",
        f"【评判细则】（每行格式：编号. 要求 | 约束类型）\n{checklist_lines(request.checklist)}",
        OUTPUT_FORMAT.format(example=example, ids="、".join(ids), yes=YES, no=NO),
    ]
    return "\n\n".join(parts)


_FENCE = re.compile(r"\A```json[ \t]*\n(.*)\n?```\Z", flags=re.S | re.I)


def parse_judgement(
    text: str, ids: Sequence[str]
) -> tuple[dict[str, bool | None], dict[str, str], str]:
    """(verdicts, raw verdict strings, reasoning) from the judge's completion.

    Strict: the completion must be a JSON object, optionally inside one ```json fence,
    with a string "reasoning" and a "verdicts" object whose keys EQUAL the checklist ids
    and whose values are "是"/"否" (or JSON true/false). Anything else raises ParseError.
    """
    body = text.strip()
    fence = _FENCE.match(body)
    if fence:
        body = fence.group(1).strip()
    try:
        obj = json.loads(body)
    except json.JSONDecodeError as err:
        raise ParseError(f"not JSON ({err.msg} at char {err.pos})") from None
    if not isinstance(obj, dict):
        raise ParseError(f"top level is {type(obj).__name__}, not an object")
    reasoning = obj.get("reasoning")
    verdicts = obj.get("verdicts")
    if not isinstance(reasoning, str):
        raise ParseError('missing or non-string "reasoning"')
    if not isinstance(verdicts, dict):
        raise ParseError('missing or non-object "verdicts"')
    want = set(ids)
    got = set(verdicts)
    if got != want:
        raise ParseError(
            f"verdict ids {sorted(got, key=_id_order)} != checklist ids "
            f"{sorted(want, key=_id_order)}"
        )
    out: dict[str, bool | None] = {}
    raw: dict[str, str] = {}
    for cid in ids:
        value = verdicts[cid]
        if value is True or value == YES:
            out[cid] = True
        elif value is False or value == NO:
            out[cid] = False
        else:
            raise ParseError(f"verdict for {cid} is {value!r}, not {YES!r}/{NO!r}/true/false")
        raw[cid] = value if isinstance(value, str) else json.dumps(value)
    return out, raw, reasoning


REASONING_CHARS = 600  # the schema's cap: a small model's reasoning must not eat the budget


def answer_schema(request: JudgeRequest) -> dict[str, Any]:
    """The JSON schema of a `rpo_bench` answer for this turn: every checklist id, each
    "是"/"否". A server that constrains decoding to it (llama.cpp's `json_schema`) gets an
    answer that parses, whatever the model; whether it is right is the calibration's
    question."""
    verdicts = {
        "type": "object",
        "properties": {cid: {"enum": [YES, NO]} for cid in request.ids},
        "required": request.ids,
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {
            "reasoning": {"type": "string", "maxLength": REASONING_CHARS},
            "verdicts": verdicts,
        },
        "required": ["reasoning", "verdicts"],
        "additionalProperties": False,
    }


def _id_order(cid: str) -> tuple[int, str]:
    return (int(cid), "") if cid.isdigit() else (1 << 30, cid)


Parsed = tuple[dict[str, bool | None], dict[str, str], str]  # verdicts, raw strings, reasoning


@dataclass(frozen=True)
class JudgePrompt:
    """A named prompt: how a turn is put to the judge and how its answer is read."""

    name: str
    render: Callable[[JudgeRequest], str]
    parse: Callable[[str, Sequence[str]], Parsed]
    schema: Callable[[JudgeRequest], dict[str, Any]] | None = None  # of a JSON answer

    def messages(self, request: JudgeRequest) -> list[dict[str, str]]:
        """The chat sent to the judge model: the whole prompt as one user message."""
        return [{"role": "user", "content": self.render(request)}]


PROMPTS = {
    "official": JudgePrompt("official", official.render_prompt, official.parse_judgement),
    "rpo_bench": JudgePrompt("rpo_bench", render_prompt, parse_judgement, answer_schema),
}
DEFAULT_PROMPT = "official"


def judge_prompt(name: str | JudgePrompt = DEFAULT_PROMPT) -> JudgePrompt:
    """The prompt called `name` (official | rpo_bench)."""
    if isinstance(name, JudgePrompt):
        return name
    if name not in PROMPTS:
        raise ValueError(f"unknown judge prompt {name!r}; known: {', '.join(PROMPTS)}")
    return PROMPTS[name]


def judge_messages(request: JudgeRequest, prompt: str = DEFAULT_PROMPT) -> list[dict[str, str]]:
    """The chat a judge using `prompt` sends for the turn."""
    return judge_prompt(prompt).messages(request)
