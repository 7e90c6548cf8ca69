"""The POS tagger comes from a pickle that is decoded, never unpickled."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import pickletools

import nltk
import pytest

from rpo_bench.constraints import tagger_data
from rpo_bench.constraints.punkt_data import ensure_punkt


class _Exploit:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


class _Point:
    def __init__(self) -> None:
        self.x = 1


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_a_pickle_that_calls_os_system_is_refused_and_not_run(tmp_path, protocol):
    marker = tmp_path / "pwned"
    data = pickle.dumps(_Exploit(str(marker)), protocol=protocol)
    with pytest.raises(ValueError, match="GLOBAL|STACK_GLOBAL") as err:
        tagger_data.decode_pickle(data)
    assert "system" in str(err.value)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("data", "opcode"),
    [
        (pickle.dumps(_Point(), protocol=2), "GLOBAL"),  # a class: not the builtin set
        (pickle.dumps(_Point(), protocol=4), "STACK_GLOBAL"),
        (b"(i__main__\nX\n.", "INST"),
        (b"\x80\x02c__builtin__\nset\n}\x85R.", "REDUCE"),  # set applied to a dict
        (b"\x80\x02c__builtin__\nset\n]\x85}b.", "BUILD"),
        (b"\x80\x02c__builtin__\nset\n.", "STOP"),  # the global itself as data
        (b"\x80\x02]c__builtin__\nset\na.", "APPEND"),
        (b"\x80\x02X\x01\x00\x00\x00aQ.", "BINPERSID"),
        (b"\x80\x02\x82\x01.", "EXT1"),
    ],
)
def test_only_data_and_set_of_a_list_are_decoded(data, opcode):
    with pytest.raises(ValueError, match=opcode):
        tagger_data.decode_pickle(data)


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_a_dict_dict_set_tuple_decodes_as_pickle_would_build_it(protocol):
    shared = ["x", 1]
    model = (
        {"bias": {"NN": 1.5, "VB": -0.25}, "i suffix ing": {"VBG": 2.0}, "": {}},
        {"the": "DT", "is": "VBZ", "naïve": "JJ", "big": 10**30, "neg": -7, "none": None},
        {"NN", "VB", "VBG", "DT"},
        [True, False, (), (shared, shared), set(), 2**40, 0.1],
    )
    data = pickle.dumps(model, protocol=protocol)
    ops = {op.name for op, _, _ in pickletools.genops(data)}
    if protocol < 4:
        assert {"GLOBAL", "REDUCE"} <= ops  # the sets go through builtins.set
    else:
        assert "EMPTY_SET" in ops and "GLOBAL" not in ops
    decoded = tagger_data.decode_pickle(data)
    assert decoded == model
    assert type(decoded[2]) is set
    pair = decoded[3][3]
    assert pair[0] is pair[1]  # the memo is shared, as pickle shares it


def test_bytes_bytearrays_and_frozensets_decode():
    value = [b"raw", bytearray(b"buf"), frozenset({1, 2}), {"a": b""}]
    decoded = tagger_data.decode_pickle(pickle.dumps(value, protocol=5))
    assert decoded == value and type(decoded[1]) is bytearray
    # Before protocol 5 a bytearray is builtins.bytearray called by REDUCE: refused.
    with pytest.raises(ValueError, match="bytearray"):
        tagger_data.decode_pickle(pickle.dumps(value, protocol=4))


def test_the_pinned_tagger_converts_and_nltk_tags_with_it(tmp_path, fresh_nltk_cache):
    root = tagger_data.ensure_tagger()
    assert root == tmp_path / "nltk_data"
    assert nltk.data.path == [str(root)] and os.environ["NLTK_DATA"] == str(root)
    ensure_punkt()  # for word_tokenize
    folder = root / "taggers" / "averaged_perceptron_tagger_eng"
    assert sorted(p.name for p in folder.iterdir()) == sorted(tagger_data.FILES)
    for name, digest in tagger_data.OUTPUT_SHA256.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest
    weights = json.loads((folder / tagger_data.FILES[0]).read_text())
    classes = json.loads((folder / tagger_data.FILES[2]).read_text())
    assert len(weights) == 75447 and len(classes) == 45
    tagged = nltk.pos_tag(nltk.word_tokenize("Write a short poem about the sea."))
    assert tagged == [
        ("Write", "VB"),
        ("a", "DT"),
        ("short", "JJ"),
        ("poem", "NN"),
        ("about", "IN"),
        ("the", "DT"),
        ("sea", "NN"),
        (".", "."),
    ]
    # NLTK 3.10's own doctest for the pretrained (JSON) English model.
    assert nltk.pos_tag("The quick brown fox jumps over the lazy dog".split()) == [
        ("The", "DT"),
        ("quick", "JJ"),
        ("brown", "NN"),
        ("fox", "NN"),
        ("jumps", "VBZ"),
        ("over", "IN"),
        ("the", "DT"),
        ("lazy", "JJ"),
        ("dog", "NN"),
    ]
    # Written once: a second call keeps the folder.
    before = (folder / tagger_data.FILES[0]).stat().st_mtime_ns
    tagger_data.ensure_tagger()
    assert (folder / tagger_data.FILES[0]).stat().st_mtime_ns == before


def test_a_foreign_copy_in_the_cache_is_replaced(tmp_path, monkeypatch):
    monkeypatch.setenv("RPO_BENCH_CACHE", str(tmp_path))
    monkeypatch.setattr(nltk.data, "path", [])
    folder = tmp_path / "nltk_data" / "taggers" / "averaged_perceptron_tagger_eng"
    folder.mkdir(parents=True)
    for name in tagger_data.FILES:
        (folder / name).write_text("{}")
    tagger_data.ensure_tagger()
    digest = hashlib.sha256((folder / tagger_data.FILES[2]).read_bytes()).hexdigest()
    assert digest == tagger_data.OUTPUT_SHA256[tagger_data.FILES[2]]
