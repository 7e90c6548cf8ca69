"""Multi-IF's multilingual counting rules, where they differ from IFEval's English ones.

Facts from Multi-IF's checker (benchmarks.md): the language is detected with
langdetect ("en" when detection fails); Chinese and Japanese count every CJK,
kana or Hangul character as a word and end sentences at 。！？.!? and newlines;
Hindi ends sentences at ।!?; quotations may also use “…” or 「…」. Every other
language falls back to IFEval's English rules. Detection is seeded here (Multi-IF
leaves it unseeded, so its verdicts can change between runs).
"""

from __future__ import annotations

import functools
import re

import langdetect
from lm_eval.tasks.ifeval import instructions_util

langdetect.DetectorFactory.seed = 0

AUTO = "auto"
_CJK = {"zh", "zh-cn", "zh-tw", "ja"}

# Dropped before counting CJK words, so punctuation never counts as a word.
_CJK_PUNCT = re.compile(
    "|".join(
        re.escape(p)
        for p in (
            "——",
            "……",
            "\\",
            ".",
            "!",
            "?",
            "/",
            "_",
            ",",
            "{",
            "}",
            "<",
            ">",
            ":",
            ";",
            "$",
            "%",
            "^",
            "&",
            "*",
            "(",
            ")",
            "+",
            '"',
            "'",
            "[",
            "]",
            "-",
            "`",
            "~",
            "@",
            "#",
            "．",
            "！",
            "，",
            "。",
            "？",
            "、",
            "￥",
            "（",
            "）",
            "：",
            "；",
            "《",
            "》",
            "“",
            "”",
            "»",
            "〔",
            "〕",
            "「",
            "」",
        )
    )
)
_CJK_CHAR = re.compile("[\u4e00-\u9fff\u3400-\u4dbf\u3040-\u309f\u30a0-\u30ff\uac00-\ud7af]")
_CJK_SENTENCE = re.compile(r"[^!?。.！？．\n]+[!?。.！？．\n]?")
_HINDI_SENTENCE_END = re.compile(r"(?<=[।!?])\s*")
_QUOTE_PAIRS = (('"', '"'), ("“", "”"), ("「", "」"))


@functools.lru_cache(maxsize=4096)
def detect_language(text: str) -> str:
    """langdetect's language code for text, seeded; "en" when it cannot tell."""
    try:
        return langdetect.detect(text)
    except langdetect.LangDetectException:
        return "en"


def _resolve(text: str, language: str) -> str:
    return detect_language(text) if language == AUTO else language


def _emoji_count(text: str) -> tuple[int, str]:
    import emoji

    return emoji.emoji_count(text), emoji.replace_emoji(text, " ")


def count_words(text: str, language: str) -> int:
    """Words as Multi-IF counts them: CJK characters one by one, else IFEval's \\w+ tokens."""
    if _resolve(text, language) not in _CJK:
        return instructions_util.count_words(text)
    text = _CJK_PUNCT.sub("", text)
    emojis, text = _emoji_count(text)
    characters = len(_CJK_CHAR.findall(text))
    return emojis + characters + len(_CJK_CHAR.sub(" ", text).split())


def count_sentences(text: str, language: str) -> int:
    """Sentences as Multi-IF counts them: its own splitters for zh/ja and hi, else Punkt."""
    lang = _resolve(text, language)
    if lang in _CJK:
        return sum(len(_CJK_SENTENCE.findall(line.strip())) for line in text.splitlines())
    if lang == "hi":
        return len([s for s in _HINDI_SENTENCE_END.split(text) if s])
    return instructions_util.count_sentences(text)


def is_quoted(text: str) -> bool:
    """Wrapped in straight, curly or corner quotes (Multi-IF accepts all three)."""
    text = text.strip()
    return len(text) > 1 and any(text[0] == a and text[-1] == b for a, b in _QUOTE_PAIRS)
