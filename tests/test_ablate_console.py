"""The ablation's terminal and log file: a stage's printed lines go above the bars and into
`<work>/ablate.log`; library log records and warnings go to the file only."""

import logging
import warnings

import pytest
from transformers.utils import logging as hf_logging

from rpo_bench.ablate.console import LOG_NAME, Progress, log_to_file


@pytest.fixture
def restore_logging():
    """log_to_file reconfigures process-wide logging; undo it for the tests that follow."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(False)
    hf_logging.disable_propagation()
    hf_logging.enable_default_handler()
    hf_logging.enable_progress_bar()


def test_stage_output_goes_to_the_console_and_the_log_and_library_noise_to_the_log_only(
    tmp_path, capsys, restore_logging
):
    path = log_to_file(tmp_path)
    assert path == tmp_path / LOG_NAME
    with Progress(2) as progress:
        progress.cell("smollm2-135m/rpo/p0/s0")
        progress.stage("train:smollm2-135m/rpo/p0/s0")
        with progress.printing():
            print("12 examples (preference), 3 batches/process", end="")
        warnings.warn("a deprecated argument", FutureWarning, stacklevel=1)
        logging.getLogger("transformers.modeling_utils").warning("Loading weights: 100%")
        progress.cell("smollm2-135m/rpo/p0/s1")
    for handler in logging.getLogger().handlers:
        handler.flush()
    terminal = capsys.readouterr()
    text = path.read_text()
    assert "12 examples (preference), 3 batches/process" in terminal.out
    assert "12 examples (preference), 3 batches/process" in text
    for noise in ("a deprecated argument", "Loading weights"):
        assert noise in text and noise not in terminal.out + terminal.err
    assert "cell smollm2-135m/rpo/p0/s0" in text
    assert "stage train:smollm2-135m/rpo/p0/s0 started" in text
    assert "stage train:smollm2-135m/rpo/p0/s0 done in" in text


def test_printing_under_a_live_terminal_display_does_not_loop(tmp_path, capsys, restore_logging):
    """In a terminal rich replaces sys.stdout by a proxy that prints through the console; a
    console that followed sys.stdout would then print into `printing`'s own stream forever."""
    import contextlib
    import sys

    from rich.file_proxy import FileProxy

    log_to_file(tmp_path)
    with Progress(1) as progress:
        with contextlib.redirect_stdout(FileProxy(progress.bar.console, sys.stdout)):
            with progress.printing():
                print("4 examples (sft), global batch 4")
    assert "4 examples (sft), global batch 4" in capsys.readouterr().out
