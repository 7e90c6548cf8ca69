"""`python -m rpo_bench.evaluate.sysbench`: `rpo-bench sysbench-score` on its own."""

import sys

from rpo_bench.evaluate.sysbench.command import main

try:
    main(sys.argv[1:])
except (ValueError, FileNotFoundError, OSError) as err:
    print(f"sysbench-score: error: {err}", file=sys.stderr)
    sys.exit(2)
