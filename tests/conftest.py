import importlib.util
import os
from pathlib import Path
from types import ModuleType

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


def load_file(name: str, path: Path) -> ModuleType:
    """The Python file at `path` imported on its own as module `name` (not via sys.path)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def fresh_nltk_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty rpo_bench cache in `tmp_path`, and no NLTK data anywhere else."""
    import nltk

    monkeypatch.setenv("RPO_BENCH_CACHE", str(tmp_path))
    monkeypatch.setenv("NLTK_DATA", "")
    monkeypatch.setattr(nltk.data, "path", [])
