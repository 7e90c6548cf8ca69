"""This machine's reachable matrix-multiply throughput at the model's shapes.

Every benchmark measures it in the same run as its engines, so each engine's share of
the peak (model FLOP/s divided by the peak) is comparable across machines and loads.

    .venv/bin/python benchmarks/peak.py
"""

from __future__ import annotations

import time

import torch

# SmolLM2-135M's largest projections: [rows, 576] x [576, 1536] (MLP up/gate).
SHAPES = ((2048, 576, 1536), (2048, 1536, 576))


def matmul_peak(dtype: torch.dtype, seconds: float = 1.0) -> float:
    """Best sustained GFLOP/s over `SHAPES` in `dtype` (torch.matmul, all threads)."""
    best = 0.0
    for m, k, n in SHAPES:
        a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
        for _ in range(3):  # warm-up: oneDNN picks and caches its kernel
            a @ b
        reps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            a @ b
            reps += 1
        best = max(best, 2 * m * k * n * reps / (time.perf_counter() - start) / 1e9)
    return best


def peaks() -> dict[str, float]:
    return {"float32": matmul_peak(torch.float32), "bfloat16": matmul_peak(torch.bfloat16)}


if __name__ == "__main__":
    for name, gflops in peaks().items():
        print(f"matmul_peak_{name}_gflops={gflops:.0f}")
