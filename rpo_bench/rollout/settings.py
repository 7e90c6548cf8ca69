"""Generation settings, explicit and recorded with every result."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class GenerationSettings:
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    max_new_tokens: int = 256
    seed: int = 0
    n: int = 1  # samples per prompt

    def __post_init__(self) -> None:
        if self.n < 1 or self.max_new_tokens < 1:
            raise ValueError(f"n and max_new_tokens must be >= 1: {self}")
        if self.n > 1 and self.temperature == 0:
            raise ValueError("n > 1 samples need temperature > 0 (greedy samples are identical)")

    @classmethod
    def of(cls, source: Any, **changes: Any) -> GenerationSettings:
        """The settings named like this class's fields on `source` (a config section, parsed
        arguments), with `changes` applied."""
        own = {f.name: getattr(source, f.name) for f in fields(cls) if hasattr(source, f.name)}
        return cls(**{**own, **changes})

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Engine:
    """How a local transformers model decodes (not what it samples); recorded with results.

    `kv_cache`: `reserved` writes each token's keys and values in place (`rollout.kv`),
    `dynamic` is transformers' DynamicCache. `dtype`: the weights' and activations' type;
    bfloat16 uses the CPU's AVX512-BF16 matmuls and changes some greedy replies.
    `continuous` (reserved cache only): a finished row's slot takes the next waiting
    (prompt, sample) row of the whole call instead of the batch shrinking (`rollout.hf`).
    """

    kv_cache: str = "dynamic"
    dtype: str = "float32"
    # Keep each finished sequence's keys and values and start later prompts that begin
    # with it from there (turn k+1 after turn k): `rollout.prefix`.
    reuse_prefix: bool = False
    continuous: bool = False

    def __post_init__(self) -> None:
        if self.kv_cache not in ("dynamic", "reserved") or self.dtype not in DTYPES:
            raise ValueError(
                f"engine: kv_cache must be dynamic|reserved and dtype {'|'.join(DTYPES)}: {self}"
            )
        if self.continuous and self.kv_cache != "reserved":
            raise ValueError(f"engine: continuous batching needs the reserved kv_cache: {self}")

    def to_dict(self) -> dict:
        return asdict(self)


DTYPES = ("float32", "bfloat16")
REFERENCE = Engine()  # the plain transformers decode loop in float32
FAST = Engine("reserved", "bfloat16", reuse_prefix=True)  # the pipeline's CPU default
ENGINES = {
    "reference": REFERENCE,
    "inplace_float32": Engine("reserved", "float32"),  # replies equal `reference`'s (tested)
    "fast_float32": Engine("reserved", "float32", reuse_prefix=True),
    "fast": FAST,
    # fast + continuous batching: `batch_size` x n rows decode at once over the whole call
    "continuous_float32": Engine("reserved", "float32", reuse_prefix=True, continuous=True),
    "continuous": Engine("reserved", "bfloat16", reuse_prefix=True, continuous=True),
}
# Where the CPU has no native bfloat16 (and there is no GPU), these run in float32.
FLOAT32_FALLBACK = {"fast": "fast_float32", "continuous": "continuous_float32"}


def engine(name: str) -> Engine:
    """The engine called `name`; `fast` and `continuous` run in float32 on a CPU without
    native bfloat16."""
    if name not in ENGINES:
        raise ValueError(f"engine {name!r}: choose one of {', '.join(ENGINES)}")
    if name in FLOAT32_FALLBACK:
        import torch

        from rpo_bench.cpu import native_bf16

        if not torch.cuda.is_available() and not native_bf16():
            return ENGINES[FLOAT32_FALLBACK[name]]
    return ENGINES[name]
