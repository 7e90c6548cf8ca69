"""Multi-IF's multilingual counting rules, where they differ from IFEval's English ones.

Facts from Multi-IF's checker (ifeval.py at commit 1cdb53e): the language is detected
with langdetect ("en" when detection fails); Chinese and Japanese count every CJK, kana
or Hangul character as a word (punctuation and emoji removed first, each emoji counted
once) and end sentences at 。！？.!? and newlines; Hindi ends sentences at ।!?; Thai
counts PyThaiNLP's words and, line by line, its sentences; quotations may also use “…”
or 「…」. Every other language falls back to IFEval's English rules. Detection is seeded
here (Multi-IF leaves it unseeded, so its verdicts can change between runs).
"""

from __future__ import annotations

import functools
import re
import warnings
from typing import Any

import langdetect
from lm_eval.tasks.ifeval import instructions_util

langdetect.DetectorFactory.seed = 0

AUTO = "auto"
_CJK = {"zh", "zh-cn", "zh-tw", "ja"}

# Dropped before counting CJK words, so punctuation never counts as a word. Multi-IF
# writes these as one character class, so a lone "—" or "…" goes too, not only pairs.
_CJK_PUNCT = re.compile(
    "["
    + "".join(
        re.escape(p)
        for p in (
            "—",
            "…",
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
    + "]+"
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

    # Removed, not replaced by a space: "a😀b" stays one non-CJK word, as in Multi-IF.
    return emoji.emoji_count(text), emoji.replace_emoji(text, "")


@functools.cache
def _thai() -> tuple[Any, Any] | None:
    """PyThaiNLP's (word_tokenize, sent_tokenize), or None (and a warning) without it."""
    try:
        from pythainlp.tokenize import sent_tokenize, word_tokenize
    except ImportError:
        warnings.warn(
            "pythainlp is not installed: Thai replies are counted with IFEval's English "
            "rules, not Multi-IF's PyThaiNLP ones (pip install pythainlp python-crfsuite)",
            stacklevel=3,
        )
        return None
    return word_tokenize, sent_tokenize


def count_words(text: str, language: str) -> int:
    """Words as Multi-IF counts them: CJK characters one by one, Thai by PyThaiNLP (its
    whitespace tokens included), else IFEval's \\w+ tokens."""
    lang = _resolve(text, language)
    if lang == "th" and (thai := _thai()) is not None:
        return len(thai[0](text))
    if lang not in _CJK:
        return instructions_util.count_words(text)
    text = _CJK_PUNCT.sub("", text)
    emojis, text = _emoji_count(text)
    characters = len(_CJK_CHAR.findall(text))
    return emojis + characters + len(_CJK_CHAR.sub(" ", text).split())


def count_sentences(text: str, language: str) -> int:
    """Sentences as Multi-IF counts them: its own splitters for zh/ja and hi, PyThaiNLP's
    line by line for th, else Punkt."""
    lang = _resolve(text, language)
    if lang == "th" and (thai := _thai()) is not None:
        return sum(len(thai[1](line)) for line in text.splitlines())
    if lang in _CJK:
        return sum(len(_CJK_SENTENCE.findall(line.strip())) for line in text.splitlines())
    if lang == "hi":
        # Whitespace-only pieces (leading blanks, a blank text) are no sentence.
        return len([s for s in _HINDI_SENTENCE_END.split(text) if s.strip()])
    return instructions_util.count_sentences(text)


def is_quoted(text: str) -> bool:
    """Wrapped in straight, curly or corner quotes (Multi-IF accepts all three)."""
    text = text.strip()
    return len(text) > 1 and any(text[0] == a and text[-1] == b for a, b in _QUOTE_PAIRS)
