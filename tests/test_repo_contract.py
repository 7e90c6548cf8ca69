"""The README's two set-up commands, and CI running the test one."""

import re

from conftest import REPO


def readme_commands():
    blocks = re.findall(r"```bash\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)
    return [b.strip() for b in blocks if "scripts/setup.sh" in b]


def test_readme_has_exactly_two_setup_commands():
    commands = readme_commands()
    assert len(commands) == 2, commands
    main, tests = commands
    assert "rpo_bench.ablate" in main and "ablations/cpu.yaml" in main
    assert "pytest" in tests


def test_main_job_runs_on_the_embedded_model():
    from rpo_bench.ablate import config

    assert config.load(REPO / "ablations" / "cpu.yaml").grid.model == ("smollm2-135m",)


def test_ci_runs_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in ci


def test_setup_pins_the_local_cpu_torch():
    setup = (REPO / "scripts" / "setup.sh").read_text()
    assert "torch==2.13.0" in setup and "--no-deps" in setup and ".venv" in setup
