"""Multi-IF loading and scoring: hand-checked verdicts and scores on the 13-row fixture."""

import argparse
import csv
import io
import json
import math
from contextlib import redirect_stdout
from fractions import Fraction as F

import pytest

from rpo_bench.constraints import from_ifeval
from rpo_bench.constraints.multilingual import count_sentences, count_words
from rpo_bench.evaluate import metrics as ifeval_metrics
from rpo_bench.evaluate import multi_if
from rpo_bench.evaluate.metrics import METRICS

from conftest import REPO

FIXTURE = REPO / "tests" / "fixtures" / "multi_if_fixture.csv"
T, X = True, False

# Hand-written replies, one per turn ("" for 2005's missing turn 3), and what each reply's
# cumulative instruction list should give: (strict verdicts, loose verdicts) per turn.
REPLIES = {
    "2001:1:en": [
        # no_comma: a comma in the greeting line; loose drops the first line.
        "Hello, neighbours!\nJoin us this Saturday at nine for a garden clean-up day. "
        "Bring gloves and a smile. Tea and cake will be served afterwards.",
        # no_comma fails (one line: loose has nothing to drop); lowercase passes.
        "dear neighbours, join us this saturday at nine for the garden clean-up day. bring gloves.",
        # lowercase fails on the preamble line, loose drops it; the end phrase is there.
        "Sure! Here is the lowercase note:\ndear neighbours\njoin us this saturday at nine "
        "for the garden clean-up day. bring gloves.\nsee you in the garden.",
    ],
    "2002:1:en": [
        "* Sleep late\n* Read a novel\n* Cook dinner with friends",
        # 2 bullets, not 3; the title is there.
        "<<My Ideal Weekend>>\n* Sleep late\n* Read a novel",
        "<<My Ideal Weekend>>\n* Morning hiking in the hills\n* Pancakes with berries for "
        "brunch\n* A quiet evening with a book",
    ],
    "2003:1:en": [
        # 30 words
        "Sunlight scatters off air molecules, and blue light scatters far more than red "
        "because its wavelength is shorter. Our eyes therefore see blue coming from every "
        "part of the sky.",
        # quotation fails strictly (preamble line), passes once loose drops it.
        'Here you go:\n"Sunlight scatters off air molecules and blue light scatters the most."',
        '"SUNLIGHT SCATTERS OFF AIR MOLECULES AND BLUE LIGHT SCATTERS THE MOST."',
    ],
    "2004:1:en": [
        "Start with one scarf instead of anything heavy. Practise for ten minutes every day."
        "\nP.S. Patience matters more than talent.",
        "*Start light*: use scarves first.\n*Practise daily*: ten minutes is enough.\n"
        "P.S. Patience matters more than talent.",
        # "ball" on the first line, "drop" on the last: only loose's middle-only variant is
        # free of both, and it still has 2 highlights.
        "*Start light*: use scarves before you ever touch a ball.\n*Practise daily*: ten "
        "minutes is enough.\nP.S. Do not worry if you drop things.",
    ],
    "2005:1:en": [
        "<<Rain>>\nsoft rain on the roof\nthe garden drinks without haste\nsleep comes easily",
        # 3 sentences, but the title was dropped.
        "Rain taps on the roof. The garden drinks slowly. Sleep comes easily.",
        "",
    ],
    "2006:1:zh": [
        # 35 CJK characters = 35 words (IFEval's \w+ count would see 3 "words").
        "我最喜欢秋天。秋天的天气很凉爽，树叶变成了金黄色，果园里挂满了成熟的苹果和梨。",
        "我最喜欢秋天。秋天的天气很凉爽。树叶变成了金黄色。果园里挂满了成熟的苹果和梨。",
        # 45 characters (>= 30 passes) but 6 sentences (< 6 fails).
        "我最喜欢秋天的天气。秋天的风很凉爽。树叶慢慢变成金黄色。果园里的苹果熟了。梨也熟了。"
        "我常常去公园散步。",
    ],
    "2007:1:zh": [
        # curly quotes count as quotation marks under Multi-IF's rule
        "“猫喜欢在阳光下睡觉，醒来后会认真地舔自己的毛。”",
        "“猫的胡须能帮助它感知周围的空间。”",
        # 31 characters: not fewer than 21
        "“猫的胡须非常灵敏，能帮助它在黑暗中判断洞口的宽度，所以猫很少被卡住。”",
    ],
    "2008:1:zh": [
        "* 苹果\n* 香蕉\n* 葡萄",
        "* 苹果\n* 香蕉\n* 葡萄\nP.S. 我最喜欢葡萄。",
        # an ASCII comma on the preamble line only: loose drops it
        "这是我的清单, 希望你喜欢:\n* 苹果\n* 香蕉\n* 葡萄\nP.S. 我最喜欢葡萄。",
    ],
    "2009:1:zh": [
        "长城是中国古代的防御工程。\n\n***\n\n它全长超过两万公里。\n\n***\n\n每年都有很多游客去参观。",
        # "长城" twice, not 3 times
        "长城是中国古代的防御工程。\n\n***\n\n长城全长超过两万公里。\n\n***\n\n每年都有很多游客去参观。",
        "<<长城>>\n\n长城是中国古代的防御工程。\n\n***\n\n长城全长超过两万公里。\n\n***\n\n"
        "很多游客喜欢在秋天登长城。",
    ],
    "2010:1:hi": [
        # 3 sentences split at "।" (English Punkt sees 1)
        "योग शरीर को लचीला बनाता है। यह तनाव कम करता है। नियमित योग से नींद अच्छी आती है।",
        # 3 sentences, but not quoted
        "योग शरीर को लचीला बनाता है। यह तनाव कम करता है। नियमित योग से नींद अच्छी आती है।",
        "“योग शरीर को लचीला बनाता है। ध्यान से मन शांत होता है। नियमित योग से नींद अच्छी आती है।”",
    ],
    "2011:1:hi": [
        # 3 sentences: not fewer than 3 (English Punkt would see 1 and pass it)
        "मेरा शहर नदी के किनारे बसा है। यहाँ के बाज़ार बहुत रंगीन हैं। लोग बहुत मिलनसार हैं।",
        "मेरा शहर नदी के किनारे बसा है।\nP.S. यहाँ की चाय मशहूर है।",
        # 4 sentences strictly; loose drops the first line and leaves 2
        "मेरा शहर नदी के किनारे बसा है। यहाँ के लोग मिलनसार हैं।\nP.S. यहाँ की चाय मशहूर है। धन्यवाद।",
    ],
    "2012:1:hi": [
        "गंगा भारत की सबसे पवित्र नदी है। यह हिमालय से निकलती है और बंगाल की खाड़ी में मिलती है।",
        "गंगा भारत की सबसे पवित्र नदी है, और यह हिमालय से निकलती है।",
        "<<गंगा>>\nगंगा भारत की सबसे पवित्र नदी है। यह हिमालय से निकलती है।",
    ],
    "2013:1:hi": [
        "*काले बादल* छाए हैं\n*ठंडी हवा* चली है",
        "*काले बादल* छाए हैं\nबादल गरजे और *ठंडी हवा* चली है",
        # the forbidden word is on the last line only: loose drops it
        "*काले बादल* छाए हैं\nबादल गरजे और *ठंडी हवा* चली है\nफिर धूप निकल आई",
    ],
}

VERDICTS = {
    "2001:1:en": [([X], [T]), ([X, T], [X, T]), ([T, X, T], [T, T, T])],
    "2002:1:en": [([T], [T]), ([X, T], [X, T]), ([T, T, T], [T, T, T])],
    "2003:1:en": [([T], [T]), ([T, X], [T, T]), ([T, T, T], [T, T, T])],
    "2004:1:en": [([T], [T]), ([T, T], [T, T]), ([T, T, X], [T, T, T])],
    "2005:1:en": [([T], [T]), ([X, T], [X, T])],
    "2006:1:zh": [([T], [T]), ([T, T], [T, T]), ([T, T, X], [T, T, X])],
    "2007:1:zh": [([T], [T]), ([T, T], [T, T]), ([T, T, X], [T, T, X])],
    "2008:1:zh": [([T], [T]), ([T, T], [T, T]), ([T, T, X], [T, T, T])],
    "2009:1:zh": [([T], [T]), ([T, X], [T, X]), ([T, T, T], [T, T, T])],
    "2010:1:hi": [([T], [T]), ([T, X], [T, X]), ([T, T, T], [T, T, T])],
    "2011:1:hi": [([X], [X]), ([T, T], [T, T]), ([X, T, T], [T, T, T])],
    "2012:1:hi": [([T], [T]), ([T, X], [T, X]), ([T, T, T], [T, T, T])],
    "2013:1:hi": [([T], [T]), ([T, T], [T, T]), ([T, T, X], [T, T, T])],
}


def _m(ps, is_, pl, il):
    """Metrics dict from exact fractions; overall is the mean of the four."""
    return {
        "prompt_level_strict": ps,
        "instruction_level_strict": is_,
        "prompt_level_loose": pl,
        "instruction_level_loose": il,
        "overall": (ps + is_ + pl + il) / 4,
    }


def _mean(*ms):
    return {name: sum(m[name] for m in ms) / len(ms) for name in ms[0]}


# Counted by hand from VERDICTS: (prompts passed / prompts, instructions passed / instructions).
EN1, ZH1, HI1 = _m(F(4, 5), F(4, 5), F(1), F(1)), _m(F(1), F(1), F(1), F(1)), _m(*[F(3, 4)] * 4)
EN2 = _m(F(1, 5), F(6, 10), F(2, 5), F(7, 10))
ZH2 = _m(F(3, 4), F(7, 8), F(3, 4), F(7, 8))
HI2 = _m(F(2, 4), F(6, 8), F(2, 4), F(6, 8))
EN3 = _m(F(2, 4), F(10, 12), F(4, 4), F(12, 12))  # 2005 has no turn 3: 4 English rows
ZH3 = _m(F(1, 4), F(9, 12), F(2, 4), F(10, 12))
HI3 = _m(F(2, 4), F(10, 12), F(4, 4), F(12, 12))
EXPECTED = {
    "1": {
        "Chinese": ZH1,
        "English": EN1,
        "Hindi": HI1,
        "all_languages": _m(F(11, 13), F(11, 13), F(12, 13), F(12, 13)),
        "average": _mean(EN1, ZH1, HI1),
    },
    "2": {
        "Chinese": ZH2,
        "English": EN2,
        "Hindi": HI2,
        "all_languages": _m(F(6, 13), F(19, 26), F(7, 13), F(20, 26)),
        "average": _mean(EN2, ZH2, HI2),
    },
    "3": {
        "Chinese": ZH3,
        "English": EN3,
        "Hindi": HI3,
        "all_languages": _m(F(5, 12), F(29, 36), F(10, 12), F(34, 36)),
        "average": _mean(EN3, ZH3, HI3),
    },
}


def _fixture_rows():
    """The fixture's rows, every field a string as in the CSV, plus the hand-written replies."""
    with FIXTURE.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    return [{**row, "responses": REPLIES[row["key"]]} for row in rows]


@pytest.fixture(scope="module")
def scored():
    return multi_if.score_rows(_fixture_rows(), resamples=200)


def test_fixture_matches_the_multi_if_schema():
    with FIXTURE.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert set(multi_if.COLUMNS) | {"turns", "responses", "turn_index"} == set(reader.fieldnames)
    assert len(rows) >= 12 and {r["language"] for r in rows} == {"English", "Chinese", "Hindi"}
    for row in rows:
        assert all(isinstance(v, str) for v in row.values())
        if not row["turn_3_prompt"]:
            continue
        assert json.loads(row["turn_3_prompt"])["role"] == "user"
        for kw in json.loads(row["turn_3_kwargs"]):  # a list of JSON strings
            assert isinstance(kw, str) and isinstance(json.loads(kw), dict)
    assert [r["key"] for r in rows if not r["turn_3_prompt"]] == ["2005:1:en"]


def test_load_conversations_reads_cumulative_turns():
    conversations = multi_if.load_conversations(FIXTURE)
    assert len(conversations) == 13
    by_key = {c.key: c for c in conversations}
    c = by_key["2004:1:en"]
    assert c.language == "English" and c.where.endswith("row '2004:1:en' (line 5)")
    assert c.turns[2].instruction_ids == (
        "detectable_content:postscript",
        "detectable_format:number_highlighted_sections",
        "keywords:forbidden_words",
    )
    assert c.turns[2].kwargs == (
        {"postscript_marker": "P.S."},
        {"num_highlights": 2},
        {"forbidden_words": ["ball", "drop"]},
    )
    assert c.turns[0].prompt.startswith("Give me two tips")
    for conv in conversations:
        present = [t for t in conv.turns if t is not None]
        for earlier, later in zip(present, present[1:], strict=False):
            n = len(earlier.instruction_ids)
            assert later.instruction_ids[:n] == earlier.instruction_ids
            assert later.kwargs[:n] == earlier.kwargs
            assert len(later.instruction_ids) > n
    assert by_key["2005:1:en"].turns[2] is None
    assert [k for k, _ in by_key["2005:1:en"].present()] == [1, 2]


def test_jsonl_with_the_same_fields_loads_the_same(tmp_path):
    path = tmp_path / "mif.jsonl"
    rows = _fixture_rows()
    rows[4]["turn_3_prompt"] = "None"  # how a pandas/str() round trip spells a missing turn
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    from_jsonl = multi_if.load_conversations(path)
    from_csv = multi_if.load_conversations(FIXTURE)
    assert [(c.key, c.language, c.turns) for c in from_jsonl] == [
        (c.key, c.language, c.turns) for c in from_csv
    ]


def test_per_row_verdicts_are_the_hand_checked_ones(scored):
    got = {r["key"]: [(t["strict"], t["loose"]) for t in r["turns"]] for r in scored["rows"]}
    assert got == VERDICTS
    missing = next(r for r in scored["rows"] if r["key"] == "2005:1:en")
    assert [t["turn"] for t in missing["turns"]] == [1, 2]


# The Chinese and Hindi verdicts above hinge on Multi-IF's counting, not IFEval's.
@pytest.mark.parametrize(
    ("instruction_id", "kwargs", "key"),
    [
        ("length_constraints:number_words", {"relation": "at least", "num_words": 30}, "2006:1:zh"),
        (
            "length_constraints:number_sentences",
            {"relation": "at least", "num_sentences": 3},
            "2010:1:hi",
        ),
    ],
)
def test_multilingual_rules_decide_these_verdicts(instruction_id, kwargs, key):
    reply = REPLIES[key][0]
    assert from_ifeval(instruction_id, kwargs, language="auto").check(reply)
    assert not from_ifeval(instruction_id, kwargs).check(reply)


@pytest.mark.parametrize(
    ("count", "key", "turn", "expected"),
    [
        (count_words, "2006:1:zh", 0, 35),
        (count_words, "2007:1:zh", 2, 31),
        (count_words, "2006:1:zh", 2, 45),
        (count_sentences, "2006:1:zh", 2, 6),
        (count_sentences, "2010:1:hi", 0, 3),
        (count_sentences, "2011:1:hi", 0, 3),
        (count_sentences, "2011:1:hi", 2, 4),
    ],
)
def test_multilingual_counts_of_these_replies(count, key, turn, expected):
    assert count(REPLIES[key][turn], "auto") == expected


def test_scores_per_turn_and_language_are_the_hand_computed_ones(scored):
    assert list(scored) == ["rows", "turns", "ci95"]
    assert scored["turns"].keys() == EXPECTED.keys()
    for turn, table in EXPECTED.items():
        assert list(scored["turns"][turn]) == list(table)
        for language, metrics in table.items():
            got = scored["turns"][turn][language]
            assert list(got) == list(metrics)
            for name, value in metrics.items():
                assert got[name] == pytest.approx(float(value), abs=1e-12), (turn, language, name)
    # spot checks against the fractions, written out
    assert scored["turns"]["1"]["English"]["overall"] == pytest.approx(0.9)
    assert scored["turns"]["2"]["average"]["overall"] == pytest.approx(0.6375)
    assert scored["turns"]["3"]["Chinese"]["overall"] == pytest.approx(7 / 12)
    assert scored["turns"]["3"]["average"]["overall"] == pytest.approx(0.75)


def test_turn_scores_are_the_one_metrics_modules_aggregate(scored):
    """The bootstrap scorer's point estimates are `evaluate.ifeval_metrics.aggregate` (the function
    lm-eval's tasks and the report aggregate with) over each turn's and language's replies."""
    languages = {r["key"]: r["language"] for r in _fixture_rows()}
    docs: dict[str, dict[str, list]] = {}
    for row in scored["rows"]:
        for t in row["turns"]:
            doc = {
                "prompt_level_strict_acc": all(t["strict"]),
                "inst_level_strict_acc": t["strict"],
                "prompt_level_loose_acc": all(t["loose"]),
                "inst_level_loose_acc": t["loose"],
            }
            by_language = docs.setdefault(str(t["turn"]), {})
            by_language.setdefault(languages[row["key"]], []).append(doc)
    assert docs.keys() == scored["turns"].keys()
    for turn, by_language in docs.items():
        by_language[multi_if.ALL] = [d for lang in list(by_language.values()) for d in lang]
        for language, rows in by_language.items():
            want = list(ifeval_metrics.aggregate(rows).values())
            assert list(scored["turns"][turn][language].values()) == pytest.approx(want, abs=1e-12)


def test_counts_give_the_same_accuracies_as_the_item_aggregators():
    docs = [
        {METRICS[0]: True, METRICS[1]: [True, True], METRICS[2]: True, METRICS[3]: [True, True]},
        {METRICS[0]: None, METRICS[1]: [False], METRICS[2]: False, METRICS[3]: [True]},
        {METRICS[0]: False, METRICS[1]: [], METRICS[2]: False, METRICS[3]: [False, True, False]},
    ]
    by_items = [ifeval_metrics.accuracy(m, [d[m] for d in docs]) for m in METRICS]
    assert by_items == [1 / 2, 2 / 3, 1 / 3, 4 / 6]
    totals = [sum(c) for c in zip(*map(ifeval_metrics.counts, docs), strict=True)]
    assert list(ifeval_metrics.from_counts(totals)) == [*by_items, sum(by_items) / 4]
    assert list(ifeval_metrics.aggregate(docs).values()) == [*by_items, sum(by_items) / 4]
    # a resample axis: each row of totals scores on its own
    batched = ifeval_metrics.from_counts([totals, ifeval_metrics.counts(docs[0])])
    assert batched.shape == (2, 5) and list(batched[1]) == [1.0] * 5
    # nothing checked: NaN everywhere, as the item aggregators give
    assert all(math.isnan(v) for v in ifeval_metrics.aggregate([]).values())
    # its prompt-level strict is None
    alone = ifeval_metrics.from_counts(ifeval_metrics.counts(docs[1]))
    assert math.isnan(alone[0]) and math.isnan(ifeval_metrics.prompt_level_acc([None]))
    assert list(alone[1:4]) == [0.0, 0.0, 1.0] and math.isnan(alone[4])


def test_bootstrap_intervals_are_seeded_and_bracket_the_score(scored):
    ci = scored["ci95"]
    assert ci["resamples"] == 200 and ci["seed"] == 0
    for turn, table in scored["turns"].items():
        assert list(ci["turns"][turn]) == list(table)
        for name, (low, high) in ci["turns"][turn].items():
            assert 0 <= low <= high <= 1
            # a percentile interval of a plug-in mean covers the point estimate on this data
            assert low <= table[name]["overall"] + 1e-9 and table[name]["overall"] <= high + 1e-9
    assert ci["turns"]["1"]["Chinese"] == [1.0, 1.0]  # every Chinese turn 1 passes
    again = multi_if.score_rows(_fixture_rows(), resamples=200)
    assert again["ci95"] == ci
    other = multi_if.score_rows(_fixture_rows(), resamples=200, seed=1)
    assert other["ci95"] != ci and other["turns"] == scored["turns"]


def _write_csv(path, rows):
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _csv_rows():
    with FIXTURE.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("turn_2_instruction_id_list", '["punctuation:no_comma", "no:such_id"]', "unknown"),
        ("turn_2_kwargs", '["{}"]', "1 entries for 2 instruction ids"),
        ("turn_1_kwargs", '["{\\"num_bullets\\": \\"three\\"}"]', "must be an integer"),
        ("turn_1_kwargs", '["{not json"]', "not valid JSON"),
        ("turn_2_prompt", '"just a string"', "must be a JSON object"),
        ("turn_1_prompt", "", "needs a turn 1"),
        ("turn_2_prompt", "None", "turn 2 is missing but turn 3 is not"),
        ("language", "", "non-empty string"),
    ],
)
def test_bad_input_names_file_row_and_field(tmp_path, field, value, message):
    rows = _csv_rows()
    rows[1][field] = value  # key 2002:1:en, on line 3
    path = tmp_path / "bad.csv"
    _write_csv(path, rows)
    with pytest.raises(ValueError) as err:
        multi_if.load_conversations(path)
    text = str(err.value)
    assert str(path) in text and "'2002:1:en'" in text and "line 3" in text
    assert f"field '{field}'" in text and message in text


def test_errors_report_the_line_where_a_multiline_row_starts(tmp_path):
    rows = _csv_rows()
    # A prompt with a real newline spans two physical lines of the CSV.
    rows[0]["turn_1_prompt"] = '{"role": "user",\n "content": "Write a note."}'
    rows[2]["turn_3_kwargs"] = "[]"
    path = tmp_path / "bad.csv"
    _write_csv(path, rows)
    with pytest.raises(ValueError, match=r"row '2003:1:en' \(line 5\): field 'turn_3_kwargs'"):
        multi_if.load_conversations(path)


def test_file_level_errors(tmp_path):
    missing_column = tmp_path / "short.csv"
    missing_column.write_text("key,language\n1:1:en,English\n", "utf-8")
    with pytest.raises(ValueError, match=r"short\.csv: line 1: missing column\(s\) turn_1_prompt"):
        multi_if.load_conversations(missing_column)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"key": "1"}\n{oops\n', "utf-8")
    with pytest.raises(ValueError, match=r"broken\.jsonl:2: not valid JSON"):
        multi_if.load_conversations(broken)
    duplicate = tmp_path / "dup.csv"
    rows = _csv_rows()
    _write_csv(duplicate, [*rows, rows[0]])
    with pytest.raises(ValueError, match=r"line 15\): field 'key' is a duplicate of line 2"):
        multi_if.load_conversations(duplicate)


@pytest.mark.parametrize(
    "index, responses, message",
    [
        (0, None, "missing"),
        (0, ["only one reply"], "turn 2 needs a reply"),
        (4, ["a", "b", "an answer to a turn that is not there"], "turn 3 was skipped"),
        (1, ["a", 7, "c"], "turn 2 needs a reply"),
    ],
)
def test_bad_responses_name_the_row(index, responses, message):
    rows = _fixture_rows()
    rows[index]["responses"] = responses
    key = rows[index]["key"]
    with pytest.raises(ValueError) as err:
        multi_if.score_rows(rows, resamples=10)
    text = str(err.value)
    assert f"row {key!r} (row {index + 1})" in text
    assert "field 'responses'" in text and message in text


def test_cli_prints_the_scores_as_json(tmp_path):
    path = tmp_path / "replies.jsonl"
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in _fixture_rows()), "utf-8"
    )
    parser = argparse.ArgumentParser(prog="rpo-bench")
    multi_if.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["multi-if-score", "--input", str(path), "--resamples", "50"])
    out = io.StringIO()
    with redirect_stdout(out):
        args.func(args)
    result = json.loads(out.getvalue())
    assert list(result) == ["rows", "turns", "ci95"]
    assert [r["key"] for r in result["rows"]] == list(REPLIES)
    assert all(list(t) == ["turn", "strict", "loose"] for r in result["rows"] for t in r["turns"])
    assert list(result["turns"]) == ["1", "2", "3"]
    for table in result["turns"].values():
        assert list(table) == ["Chinese", "English", "Hindi", "all_languages", "average"]
        for metrics in table.values():
            assert list(metrics) == [*multi_if.METRICS, "overall"]
            assert all(0 <= v <= 1 for v in metrics.values())
    assert result["turns"]["3"]["average"]["overall"] == pytest.approx(0.75)
