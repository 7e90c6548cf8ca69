"""llama.cpp's OpenAI-compatible server on this machine, for every LLM role without an API key.

`build` compiles `llama-server` once per machine from the pinned `llama-cpp-python` sdist,
which vendors llama.cpp (no Python package is installed and none of its code is imported):
the sdist is fetched with pip, checked against its sha256, and built with cmake into
`$RPO_BENCH_CACHE/llama.cpp/<version>/bin` (a temporary folder renamed into place, under a
lock, so two runs never build twice or see half a build). `LocalServer` starts it on
127.0.0.1 on a free port with a model's GGUF file (`models.gguf_file`) and stops it;
`rpo-bench serve` does both from the command line.

Point a role at it with `base_url: http://127.0.0.1:<port>/v1` and any model name (the
server serves one model). The clients take their parallelism from the server's slots
(`openai_client.default_concurrency`).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from filelock import FileLock

from rpo_bench.chunked import sha256_file
from rpo_bench.paths import cache_dir

VERSION = "0.3.36"  # llama-cpp-python's sdist; its vendor/llama.cpp is what is built
SDIST = f"llama_cpp_python-{VERSION}.tar.gz"
SDIST_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
CMAKE_FLAGS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DGGML_NATIVE=ON",  # this machine's SIMD (AVX-512, VNNI, BF16)
    "-DLLAMA_CURL=OFF",  # nothing downloads models
    "-DBUILD_SHARED_LIBS=OFF",  # one self-contained binary, copied out of the build tree
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
)
log = logging.getLogger(__name__)


class ServerError(RuntimeError):
    """The server could not be built or started; the message says what to do."""


def home() -> Path:
    return cache_dir() / "llama.cpp" / VERSION


def binary() -> Path:
    return home() / "bin" / "llama-server"


def build(quiet: bool = True) -> Path:
    """`llama-server`, built once per machine (about 4 minutes on 2 cores); its path."""
    target = binary()
    if target.exists():
        return target
    home().mkdir(parents=True, exist_ok=True)
    with FileLock(str(home()) + ".lock"):
        if target.exists():  # another process built it while this one waited
            return target
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(dir=home()) as tmp:
            src = _unpack(_download(Path(tmp)), Path(tmp))
            out = Path(tmp) / "build"
            # quiet: cmake's and the compiler's output (thousands of warning lines) go to a log
            build_log = home() / "build.log"
            with build_log.open("w") as log_file:
                sink = {"stdout": log_file, "stderr": subprocess.STDOUT} if quiet else {}
                try:
                    subprocess.run(
                        ["cmake", "-S", str(src), "-B", str(out), *CMAKE_FLAGS], check=True, **sink
                    )
                    jobs = str(os.cpu_count() or 1)
                    subprocess.run(
                        ["cmake", "--build", str(out), "-j", jobs, "--target", "llama-server"],
                        check=True,
                        **sink,
                    )
                except (subprocess.CalledProcessError, FileNotFoundError) as err:
                    where = f"; its output: {build_log}" if quiet else ""
                    raise ServerError(
                        f"building llama-server {VERSION} failed ({err}){where}; it needs cmake "
                        "and a C++ compiler (gcc or clang)"
                    ) from None
            staged = Path(tmp) / "bin"
            staged.mkdir()
            shutil.copy2(out / "bin" / "llama-server", staged / "llama-server")
            staged.rename(target.parent)
        log.info("built %s in %.0f s", target, time.perf_counter() - started)
    return target


def _download(folder: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
           "-q", "-d", str(folder), f"llama-cpp-python=={VERSION}"]  # fmt: skip
    try:
        subprocess.run(cmd, check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as err:
        raise ServerError(
            f"could not download the llama-cpp-python=={VERSION} sdist from the package index: "
            f"{err.stderr.strip()[-300:]}"
        ) from None
    path = folder / SDIST
    digest = sha256_file(path)
    if digest != SDIST_SHA256:
        raise ServerError(f"{SDIST} has sha256 {digest}, expected {SDIST_SHA256}; refusing it")
    return path


def _unpack(sdist: Path, folder: Path) -> Path:
    """The vendored llama.cpp tree of the sdist."""
    with tarfile.open(sdist) as tar:
        tar.extractall(folder / "src", filter="data")  # no links out, no devices
    (top,) = (folder / "src").iterdir()
    return top / "vendor" / "llama.cpp"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _repack_options(cpuinfo: Path = Path("/proc/cpuinfo")) -> list[str]:
    """`--no-repack` on a CPU with AMX: the pinned build's AMX matmul (used for repacked
    weights) crashes with SIGSEGV at the first decode on such a CPU (seen on a 2-core Xeon,
    2026-12-07, with every ladder model), so weights stay in their file's layout there."""
    try:
        flags = cpuinfo.read_text()
    except OSError:
        return []
    return ["--no-repack"] if re.search(r"\bamx_int8\b", flags) else []


class LocalServer:
    """`llama-server` serving one GGUF on 127.0.0.1; a context manager. `slots` requests run
    at once, each with `context` tokens; `threads` defaults to every core."""

    def __init__(
        self,
        gguf: str | Path,
        slots: int = 2,
        context: int = 4096,
        port: int | None = None,
        threads: int | None = None,
        log_file: str | Path | None = None,
    ) -> None:
        self.gguf = Path(gguf)
        if not self.gguf.is_file():
            raise ServerError(f"no GGUF file at {self.gguf}")
        self.slots, self.context = slots, context
        self.port = port or free_port()
        self.threads = threads or os.cpu_count() or 1
        self.log_file = Path(log_file) if log_file else None
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """The base URL a role's `base_url` takes."""
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        return [
            str(build()), "-m", str(self.gguf), "--host", "127.0.0.1", "--port", str(self.port),
            "-np", str(self.slots), "-c", str(self.slots * self.context),
            "-t", str(self.threads), "--no-webui", *_repack_options(),
        ]  # fmt: skip

    def start(self, wait: float = 120.0) -> LocalServer:
        out: Any = self.log_file.open("ab") if self.log_file else subprocess.DEVNULL
        self.process = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(
                    f"llama-server exited with code {self.process.returncode} before it was "
                    f"ready (model {self.gguf}; its log: {self.log_file or 'pass log_file'})"
                )
            if _healthy(self.port):
                return self
            time.sleep(0.2)
        self.stop()
        raise ServerError(f"llama-server did not become ready in {wait:.0f} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False  # not listening yet, or 503 while the model loads


def _serve(args: argparse.Namespace) -> None:
    from rpo_bench.models import gguf_file
    from rpo_bench.roles import describe

    if args.build_only:
        print(build(quiet=False))
        return
    server = LocalServer(gguf_file(args.model), args.slots, args.context, args.port)
    with server:
        print(f"serving {args.model} at {server.url} ({args.slots} slots of {args.context} "
              "tokens); Ctrl-C stops it", flush=True)  # fmt: skip
        print(describe(server.url, args.model), flush=True)
        try:
            server.process.wait()  # type: ignore[union-attr]
        except KeyboardInterrupt:
            pass


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `serve` on an argparse subparsers object."""
    p = subparsers.add_parser(
        "serve",
        help="serve a ladder model with llama.cpp's OpenAI-compatible server on 127.0.0.1 "
        "(built once per machine)",
    )
    p.add_argument("model", nargs="?", default="smollm2-135m", help="a ladder model name")
    p.add_argument("--slots", type=int, default=2, help="requests served at once")
    p.add_argument("--context", type=int, default=4096, help="tokens per slot")
    p.add_argument("--port", type=int, default=None, help="default: a free port")
    p.add_argument("--build-only", action="store_true", help="build llama-server and exit")
    p.set_defaults(func=_serve)
    return p
