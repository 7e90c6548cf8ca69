import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
if "RPO_BENCH_DATA" not in os.environ and SHARED_DATA.is_dir():
    os.environ["RPO_BENCH_DATA"] = str(SHARED_DATA)

# Before any test module imports lm-eval's IFEval code, which would try to download Punkt.
import rpo_bench.constraints  # noqa: E402,F401


@pytest.fixture(scope="session")
def prepared_model_dir() -> Path:
    from rpo_bench import models

    return models.prepare()
