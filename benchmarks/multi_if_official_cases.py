"""Record what Multi-IF's OFFICIAL scorer says on hand-made cases (for the Multi-IF tests).

The official code is not copied here: it is imported from a checkout of
facebookresearch/Multi-IF at commit 1cdb53e given on the command line, and only its
answers are written to tests/fixtures/multi_if_official.json:

- "checks": each case's instruction list scored by `metrics.gen_acc_strict` and
  `metrics.gen_acc_loose` (per-instruction verdicts);
- "counts": each text's word and sentence counts as `ifeval.NumberOfWords` and
  `ifeval.NumberOfSentences` see them (found with their own "less than n" checks: the
  count is the smallest n that passes, minus one), so every language branch is covered;
- "forced": the count helpers that those checks dispatch to (`count_words_chinese_japanese`,
  `split_chinese_japanese`, `count_hindi_num_sentences`, PyThaiNLP's tokenizers as
  ifeval imports them, `count_words`, `count_sentences`) called on texts directly;
- "turns": small conversations scored turn by turn by
  `metrics.MultiTurnInstructionFollowingPromptSolution.metrics_gen` (overall score per
  language and pooled, with each row's verdicts).

Multi-IF leaves langdetect unseeded; each case is run under several seeds and must get
the same answer under all of them (else the case is ambiguous and is rejected).

    git -C <mirror> archive 1cdb53e | tar -x -C /tmp/multi-if
    pip install --target /tmp/multi-if-deps pythainlp python-crfsuite   # its Thai rules
    PYTHONPATH=/tmp/multi-if-deps .venv/bin/python benchmarks/multi_if_official_cases.py \\
        --official /tmp/multi-if
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import sys
import warnings
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "tests" / "fixtures" / "multi_if_official.json"
COMMIT = "1cdb53e"
SEEDS = (0, 1, 2, 3, 4)

EN = "Dear team, the meeting moves to Friday. Please bring your notes and be on time."
ZH = "今天天气很好……我们去公园散步吧——你觉得怎么样？好的。"
ZH_ELLIPSIS = "今天的天气非常好…我们一起去公园散步吧—你觉得怎么样？我觉得这是个好主意。"
ZH_EMOJI = (
    "我非常喜欢看abc😀def这部电影👍我们明天一起去电影院看吧，你觉得怎么样？我觉得这是一个好主意。"
)
JA = "今日はとても良い天気ですね。公園に散歩に行きましょう！一緒に行きませんか？"
KO = "안녕하세요 저는 학생입니다. 만나서 반갑습니다."
HI = "  यह पहला वाक्य है। यह दूसरा वाक्य है! क्या यह तीसरा वाक्य है?  "
TH = "วันนี้อากาศดีมาก เราจะไปเที่ยวทะเลกัน\nพรุ่งนี้ฝนอาจจะตกหนัก ควรเตรียมร่มไปด้วย"
RU = "Сегодня хорошая погода. Мы пойдём гулять в парк, а потом домой."
FR = "Bonjour à tous. Nous allons au marché demain matin, puis au musée."
BLANKS = ("", "   ", "\n\n", " \t ")


def rule(iid: str, **kwargs: Any) -> list:
    """One [instruction id, kwargs] entry of an instruction list."""
    return [iid, kwargs]


def one(name: str, response: str, iid: str, **kwargs: Any) -> tuple[str, list, str]:
    """A case checked against one instruction."""
    return name, [rule(iid, **kwargs)], response


WORDS = "length_constraints:number_words"
SENTS = "length_constraints:number_sentences"

# (name, instruction list, response); one(name, response, id, **kwargs) for a single rule
# fmt: off
CHECKS: list[tuple[str, list, str]] = [
    # blank replies: "" follows nothing; whitespace is checked strictly, never loosely
    *(
        (
            f"blank_{i}",
            [
                rule("punctuation:no_comma"),
                rule(WORDS, num_words=5, relation="less than"),
                rule(SENTS, num_sentences=2, relation="less than"),
                rule("keywords:forbidden_words", forbidden_words=["cat"]),
                rule(
                    "keywords:letter_frequency",
                    letter="a",
                    let_frequency=2,
                    let_relation="less than",
                ),
                rule(
                    "change_case:capital_word_frequency",
                    capital_frequency=1,
                    capital_relation="less than",
                ),
                rule("change_case:english_lowercase"),
                rule("change_case:english_capital"),
                rule("language:response_language", language="en"),
                rule("startend:quotation"),
                rule("detectable_format:json_format"),
                rule("detectable_content:number_placeholders", num_placeholders=0),
            ],
            blank,
        )
        for i, blank in enumerate(BLANKS)
    ),
    # CJK word counting: lone … and — are punctuation; emoji count once, removed
    one("zh_words", ZH, WORDS, num_words=22, relation="at least"),
    one("zh_ellipsis_less", ZH_ELLIPSIS, WORDS, num_words=34, relation="less than"),
    one("zh_ellipsis_atleast", ZH_ELLIPSIS, WORDS, num_words=33, relation="at least"),
    one("zh_emoji_less", ZH_EMOJI, WORDS, num_words=42, relation="less than"),
    one("zh_emoji_atleast", ZH_EMOJI, WORDS, num_words=41, relation="at least"),
    one("zh_sentences", ZH, SENTS, num_sentences=2, relation="at least"),
    one("ja_sentences", JA, SENTS, num_sentences=3, relation="at least"),
    one("ko_words", KO, WORDS, num_words=4, relation="less than"),
    one("hi_sentences", HI, SENTS, num_sentences=3, relation="at least"),
    one("hi_sentences_less", HI, SENTS, num_sentences=4, relation="less than"),
    one("th_words", TH, WORDS, num_words=20, relation="at least"),
    one("th_sentences", TH, SENTS, num_sentences=4, relation="at least"),
    one("ru_words", RU, WORDS, num_words=11, relation="less than"),
    one("en_sentences", EN, SENTS, num_sentences=2, relation="at least"),
    # quotation: straight, curly and corner quotes
    one("quote_straight", '"' + EN + '"', "startend:quotation"),
    one("quote_curly", "“" + ZH + "”", "startend:quotation"),
    one("quote_corner", "「" + JA + "」", "startend:quotation"),
    one("quote_loose", 'Here it is:\n"' + EN + '"', "startend:quotation"),
    one("quote_mismatched", "“" + EN + '"', "startend:quotation"),
    # keyword frequency: an invalid regex fails instead of raising
    one("keyword_bad_regex", "Rain again :-( no picnic.", "keywords:frequency", keyword=":-(", frequency=1, relation="less than"),
    one("keyword_freq", EN, "keywords:frequency", keyword="notes", frequency=1, relation="at least"),
    one("keyword_existence", EN, "keywords:existence", keywords=["friday", "Notes"]),
    one("forbidden", EN, "keywords:forbidden_words", forbidden_words=["note", "time"]),
    one("letter", EN, "keywords:letter_frequency", letter="E", let_frequency=9, let_relation="at least"),
    one("no_comma_loose", "Sure, here you go:\nNo commas here.", "punctuation:no_comma"),
    one("lowercase_loose", "Here is the note:\nplease bring your notes and be on time at the meeting on friday.", "change_case:english_lowercase"),
    (
        "capital",
        [rule("change_case:english_capital")],
        "THE MEETING MOVES TO FRIDAY. PLEASE BRING YOUR NOTES AND BE ON TIME. THANK YOU VERY "
        "MUCH FOR YOUR HELP AND YOUR PATIENCE.",
    ),
    (
        "capital_words",
        [
            rule(
                "change_case:capital_word_frequency",
                capital_frequency=3,
                capital_relation="at least",
            )
        ],
        "The USA and the UK met in NYC today.",
    ),
    one("response_language", FR, "language:response_language", language="fr"),
    one("response_language_no", FR, "language:response_language", language="ru"),
    one("placeholders", "Send it to [name] at [address].", "detectable_content:number_placeholders", num_placeholders=2),
    one("postscript", "Thanks for reading.\np.s. see you soon.", "detectable_content:postscript", postscript_marker="P.S."),
    one("postscript_pps", "Thanks.\nP. P. S. one more thing.", "detectable_content:postscript", postscript_marker="P.P.S"),
    one("constrained", "My answer is maybe.", "detectable_format:constrained_response"),
    one("json_fenced", '```json\n{"a": 1}\n```', "detectable_format:json_format"),
    one("json_bad", "{'a': 1}", "detectable_format:json_format"),
    one("sections", "Section 1\nIntro text.\nSection 2\nMore text.", "detectable_format:multiple_sections", section_spliter="Section", num_sections=2),
    one("bullets", "* one\n* two\n- three", "detectable_format:number_bullet_lists", num_bullets=3),
    one("bullets_loose", "My list:\n* one\n* two\n* three", "detectable_format:number_bullet_lists", num_bullets=2),
    one("highlights", "*first* and **second** and * * here", "detectable_format:number_highlighted_sections", num_highlights=2),
    one("title", "<<A Title>>\nBody text.", "detectable_format:title"),
    one("title_empty", "<<   >>\nBody text.", "detectable_format:title"),
    one("two_responses", "First answer.\n******\nSecond answer.", "combination:two_responses"),
    one("two_responses_same", "Same.\n******\nSame.", "combination:two_responses"),
    one("repeat_prompt", "  write a poem. Roses are red.", "combination:repeat_prompt", prompt_to_repeat="Write a poem."),
    one("end_checker", 'The answer is 4. Any other questions?"', "startend:end_checker", end_phrase="Any other questions?"),
    one("paragraphs", "One.\n***\nTwo.\n***\nThree.", "length_constraints:number_paragraphs", num_paragraphs=3),
    one("paragraphs_empty", "One.\n***\n\n***\nTwo.", "length_constraints:number_paragraphs", num_paragraphs=2),
    (
        "first_word",
        [
            rule(
                "length_constraints:nth_paragraph_first_word",
                num_paragraphs=2,
                nth_paragraph=2,
                first_word="then",
            )
        ],
        'First part.\n\n"Then, more.',
    ),
    # a turn's whole (cumulative) list
    (
        "list_mixed",
        [
            rule("punctuation:no_comma"),
            rule(WORDS, num_words=10, relation="at least"),
            rule("detectable_format:title"),
        ],
        "<<Plan>>\n" + EN,
    ),
]
# fmt: on

COUNT_TEXTS: dict[str, str] = {
    "en": EN,
    "en_multi": "Mr. Smith went to Washington. He arrived at 5 p.m. on Monday!\nThen he left.",
    "zh": ZH,
    "zh_ellipsis": ZH_ELLIPSIS,
    "zh_emoji": ZH_EMOJI,
    "zh_lines": "这是第一行，没有句号\n这是第二行，有句号。这里还有一句话！\n\n"
    "这是最后一行，我们的计划很好",
    "ja": JA,
    "ja_mixed": "こんにちは、ジェイソンさん、今日は何をしますか？映画を見に行きましょう☺",
    "ko": KO,
    "hi": HI,
    "hi_tail": "यह पहला वाक्य है।   \n",
    "th": TH,
    "ru": RU,
    "fr": FR,
    "blank": "   ",
}


# Texts for the official count helpers called directly, the language forced (not detected).
FORCED_TEXTS = [*COUNT_TEXTS.values(), "  ", "a😀b c", "——……—…", "。。", "\u0964 \u0964"]


def _forced(ifeval: Any, text: str) -> dict[str, int]:
    return {
        "zh_words": ifeval.count_words_chinese_japanese(text),
        "zh_sentences": len(list(ifeval.split_chinese_japanese(text))),
        "hi_sentences": ifeval.count_hindi_num_sentences(text),
        "th_words": len(ifeval.word_tokenize_thai(text)),
        "th_sentences": sum(len(ifeval.sent_tokenize_thai(line)) for line in text.splitlines()),
        "en_words": ifeval.count_words(text),
        "en_sentences": ifeval.count_sentences(text),
    }


def _row(key: str, language: str, turns: list[tuple[str, list] | None]) -> dict[str, str]:
    row = {"key": key, "language": language}
    for k, turn in enumerate(turns, 1):
        if turn is None:
            row |= {
                f"turn_{k}_prompt": "None",
                f"turn_{k}_instruction_id_list": "None",
                f"turn_{k}_kwargs": "None",
            }
            continue
        prompt, instructions = turn
        row |= {
            f"turn_{k}_prompt": json.dumps({"role": "user", "content": prompt}),
            f"turn_{k}_instruction_id_list": json.dumps([i for i, _ in instructions]),
            f"turn_{k}_kwargs": json.dumps([json.dumps(kw) for _, kw in instructions]),
        }
    return row


_T1 = [rule("punctuation:no_comma")]
_T2 = [*_T1, rule(WORDS, num_words=12, relation="at least")]
_T3 = [*_T2, rule("startend:quotation")]
# (row, replies); turn lists are cumulative, as in the data; the last rows skip turn 3
CONVERSATIONS: list[tuple[dict[str, str], list[str]]] = [
    (
        _row("c1", "English", [("Write.", _T1), ("Longer.", _T2), ("Quote it.", _T3)]),
        ["No commas here at all.", EN, '"' + EN.replace(",", "") + '"'],
    ),
    (
        _row("c2", "English", [("Write.", _T1), ("Longer.", _T2), ("Quote it.", _T3)]),
        ["   ", "Sure:\nThe meeting moves to Friday and you should bring your notes along.", ""],
    ),
    (
        _row("c3", "Chinese", [("写。", _T1), ("长一点。", _T2), None]),
        [ZH.replace("，", ""), ZH_EMOJI, ""],
    ),
    (
        _row("c4", "Chinese", [("写。", _T1), ("长一点。", _T2), ("引用。", _T3)]),
        ["你好，世界。", ZH_ELLIPSIS, "“" + ZH_ELLIPSIS + "”"],
    ),
    (_row("c5", "Hindi", [("लिखो।", _T1), ("और।", _T2), None]), [HI, HI + HI, ""]),
    (
        _row("c6", "Hindi", [("लिखो।", _T1), ("और।", _T2), ("उद्धरण।", _T3)]),
        ["\n", "यह, एक वाक्य है।", '"' + HI.strip() + HI.strip() + '"'],
    ),
    # scipy's bootstrap in metrics_gen needs two rows per language and turn
    (
        _row("c7", "Chinese", [("写。", _T1), ("长一点。", _T2), ("引用。", _T3)]),
        [ZH_ELLIPSIS, ZH, "「" + ZH_EMOJI.replace("，", "") + "」"],
    ),
    (_row("c8", "Hindi", [("लिखो।", _T1), ("और।", _T2), ("उद्धरण।", _T3)]), [HI, HI, "  "]),
]


def _stable(fn, *args: Any) -> Any:
    """fn's answer, the same under every langdetect seed in SEEDS (else an error)."""
    import langdetect

    answers = []
    for seed in SEEDS:
        langdetect.DetectorFactory.seed = seed
        answers.append(fn(*args))
    if any(a != answers[0] for a in answers):
        raise SystemExit(f"answer depends on the langdetect seed: {answers} for {args!r}")
    return answers[0]


def _check(metrics: Any, instructions: list, response: str) -> dict[str, list[bool]]:
    x = {
        "response": response,
        "instruction_id_list": [i for i, _ in instructions],
        "kwargs": [kw for _, kw in instructions],
    }
    strict = metrics.gen_acc_strict(x)["follow_instruction_list"]
    loose = metrics.gen_acc_loose(x)["follow_instruction_list"]
    return {"strict": strict, "loose": loose}


def _count(ifeval: Any, cls: str, text: str) -> int:
    """The count that ifeval's `cls` check compares: min n with "less than n", minus 1."""
    for n in range(10_000):
        checker = getattr(ifeval, cls)(cls)
        key = "num_words" if cls == "NumberOfWords" else "num_sentences"
        checker.build_description(**{key: n, "relation": "less than"})
        if checker.check_following(text):
            return n - 1
    raise SystemExit(f"{cls}: no count below 10000 for {text!r}")


def _turns(metrics: Any) -> dict[str, Any]:
    import pandas as pd

    solution = metrics.MultiTurnInstructionFollowingPromptSolution
    out = {}
    for k in (1, 2, 3):
        frame = pd.DataFrame(
            [
                row | {"responses": replies[k - 1], "turn_index": str(k)}
                for row, replies in CONVERSATIONS
            ]
        )
        result, strict, loose = solution.metrics_gen(frame, return_outputs=True)
        out[str(k)] = {
            "overall": {
                name.split(f"turn_{k}_", 1)[1].removesuffix("_overall"): value
                for name, value in result.items()
                if name.endswith("_overall")
            },
            "rows": {
                key: {
                    "strict": s["follow_instruction_list"],
                    "loose": lo["follow_instruction_list"],
                }
                for key, s, lo in zip(
                    strict["counter"], strict["all_languages"], loose["all_languages"], strict=True
                )
            },
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--official", required=True, help=f"Multi-IF checkout at {COMMIT}")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()

    from rpo_bench.constraints.punkt_data import ensure_punkt

    ensure_punkt()  # the official count_sentences loads NLTK's English Punkt
    sys.path.insert(0, str(Path(args.official).resolve()))
    import ifeval  # the official modules, from the checkout
    import metrics

    warnings.filterwarnings("ignore")  # scipy's bootstrap on constant 0/1 lists
    record = {
        "source": f"facebookresearch/Multi-IF@{COMMIT}: metrics.py and ifeval.py",
        "script": "benchmarks/multi_if_official_cases.py",
        "langdetect_seeds": list(SEEDS),
        "versions": {
            p: importlib.metadata.version(p) for p in ("langdetect", "nltk", "emoji", "pythainlp")
        },
        "checks": [
            {
                "name": name,
                "instructions": ins,
                "response": response,
                **_stable(_check, metrics, ins, response),
            }
            for name, ins, response in CHECKS
        ],
        "counts": [
            {
                "name": name,
                "text": text,
                "words": _stable(_count, ifeval, "NumberOfWords", text),
                "sentences": _stable(_count, ifeval, "NumberOfSentences", text),
            }
            for name, text in COUNT_TEXTS.items()
        ],
        "forced": [{"text": t, **_forced(ifeval, t)} for t in FORCED_TEXTS],
        "conversations": [row | {"responses": replies} for row, replies in CONVERSATIONS],
        "turns": _stable(_turns, metrics),
    }
    Path(args.out).write_text(json.dumps(record, ensure_ascii=False, indent=1) + "\n")
    n = sum(len(record[part]) for part in ("checks", "counts", "forced", "turns"))
    print(f"wrote {args.out}: {n} cases")


if __name__ == "__main__":
    main()
