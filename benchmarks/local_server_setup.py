"""The local llama.cpp server's set-up times: the first build on a machine (download of the
pinned sdist, sha256 check, cmake, compile), a later call that finds the build, and the
start of a served model until `/health` answers.

    .venv/bin/python benchmarks/local_server_setup.py [--fresh] [--model smollm2-135m]

`--fresh` builds into an empty temporary cache (about 5 minutes on 2 cores; needs the
package index), as a new machine does; without it the first-build figure is the build
already in the cache (0 s). Run it on an idle machine. Last line:

`first_build_s=<a> cached_build_s=<b> start_s=<c>` (start: the median of 3)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fresh", action="store_true", help="build into an empty cache")
    parser.add_argument("--model", default="smollm2-135m")
    args = parser.parse_args()
    from rpo_bench.models import gguf_file  # the model's file, from the real cache

    gguf = gguf_file(args.model)
    if args.fresh:  # the build's cache only: the model's file was found above
        os.environ["RPO_BENCH_CACHE"] = tempfile.mkdtemp(prefix="llama-build-")
    from rpo_bench import local_server

    started = time.perf_counter()
    local_server.build(quiet=True)
    first = time.perf_counter() - started
    started = time.perf_counter()
    local_server.build()
    cached = time.perf_counter() - started
    starts = []
    for _ in range(3):
        started = time.perf_counter()
        with local_server.LocalServer(gguf, slots=2, context=4096):
            starts.append(time.perf_counter() - started)
    print(f"binary: {local_server.binary()}")
    print(f"starts of {args.model}: {', '.join(f'{s:.2f}' for s in starts)} s")
    print(
        f"first_build_s={first:.0f} cached_build_s={cached:.3f} "
        f"start_s={statistics.median(starts):.2f}"
    )


if __name__ == "__main__":
    main()
