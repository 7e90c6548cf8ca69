"""What this CPU computes natively; decides the default precision of CPU engines."""

from __future__ import annotations

import functools
from pathlib import Path


@functools.cache
def native_bf16() -> bool:
    """True when the CPU multiplies bfloat16 natively (AVX512-BF16 or AMX).

    Without it oneDNN emulates bfloat16, which is slower than float32.
    """
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags
