"""One file shipped as raw byte chunks, one chunk per pip-installed wheel, joined and checked.

The wheels are untrusted data: their Python code is never imported. Each chunk is found
through its distribution's installed file list (`importlib.metadata`), the chunks are
streamed in order into one file whose size and sha256 must equal the pinned ones, and only
then does the file appear (atomically) at its place in the cache.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rpo_bench.files import atomic_folder

BLOCK = 1 << 22  # bytes read at a time while joining or hashing


@dataclass(frozen=True)
class Part:
    """One chunk: a file at `path` (posix, relative to site-packages) in `distribution`."""

    distribution: str  # pip name
    version: str  # exact pin
    path: str

    @property
    def requirement(self) -> str:
        return f"{self.distribution}=={self.version}"


@dataclass(frozen=True)
class ChunkedFile:
    parts: tuple[Part, ...]  # in join order
    size: int  # bytes of the joined file
    sha256: str  # of the joined file
    install_hint: str = ""  # another command that installs every part, for error messages

    def packages(self) -> str:
        """The distributions, compactly, for error messages."""
        names = [p.distribution for p in self.parts]
        if len(names) > 2:
            return f"{names[0]} .. {names[-1]} (=={self.parts[0].version})"
        return ", ".join(p.requirement for p in self.parts)


class ChunkError(ValueError):
    """A chunk is missing, at the wrong version, or the joined bytes are not the pinned ones."""


def pip_install_command(parts: Sequence[Part], reinstall: bool = False) -> str:
    """The exact command that installs `parts` into this interpreter's environment."""
    reqs = " ".join(shlex.quote(p.requirement) for p in parts)
    force = " --force-reinstall" if reinstall else ""
    return f"{shlex.quote(sys.executable)} -m pip install{force} --no-deps --no-compile {reqs}"


def _distribution(name: str, path: Sequence[str] | None) -> importlib.metadata.Distribution | None:
    """The installed distribution called `name` on `path` (default sys.path), or None."""
    found = importlib.metadata.Distribution.discover(
        name=name, path=list(path) if path is not None else sys.path
    )
    return next(iter(found), None)


def _record_sha256(dist: importlib.metadata.Distribution, rel: str) -> str | None:
    for f in dist.files or ():
        if f.as_posix() == rel and f.hash is not None and f.hash.mode == "sha256":
            padded = f.hash.value + "=" * (-len(f.hash.value) % 4)
            return base64.urlsafe_b64decode(padded).hex()
    return None


def locate(
    chunked: ChunkedFile, path: Sequence[str] | None = None
) -> list[tuple[Part, Path, str | None]]:
    """Each part's file on disk (with the sha256 its wheel's RECORD claims for it), found
    through the installed distributions' file lists on `path` (default sys.path); a missing
    or wrong-version distribution, or a distribution without its chunk, is an error that
    says what to run."""
    missing: list[Part] = []
    absent: list[str] = []
    problems: list[str] = []  # installed but wrong: reinstalling is the fix
    found: list[tuple[Part, Path, str | None]] = []
    for part in chunked.parts:
        dist = _distribution(part.distribution, path)
        if dist is None:
            absent.append(part.distribution)
            missing.append(part)
            continue
        if dist.version != part.version:
            problems.append(
                f"{part.distribution} {dist.version} is installed, pinned {part.version}"
            )
            missing.append(part)
            continue
        listed = next((f for f in dist.files or () if f.as_posix() == part.path), None)
        file = Path(dist.locate_file(listed)) if listed is not None else None
        if file is None or not file.is_file():
            problems.append(f"{part.requirement} lacks {part.path}")
            missing.append(part)
            continue
        found.append((part, file, _record_sha256(dist, part.path)))
    if missing:
        why = "; ".join(problems + (["not installed: " + ", ".join(absent)] if absent else []))
        command = pip_install_command(missing, reinstall=bool(problems))
        hint = f" (or `{chunked.install_hint}`)" if chunked.install_hint else ""
        raise ChunkError(
            f"{len(missing)} of the {len(chunked.parts)} packages that carry this file are "
            f"missing or wrong ({why}): run `{command}`{hint}"
        )
    return found


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


def join(chunked: ChunkedFile, target: Path, path: Sequence[str] | None = None) -> Path:
    """The joined file at `target`, made from the installed parts unless a file with the
    pinned sha256 is already there; a mismatch is refused and no new file appears.
    `target.parent` is the file's own folder: it is replaced whole."""
    if target.is_file() and target.stat().st_size == chunked.size:
        if sha256_file(target) == chunked.sha256:
            return target
    located = locate(chunked, path)
    total = sum(file.stat().st_size for _, file, _ in located)
    if total != chunked.size:
        raise ChunkError(
            f"the parts in {chunked.packages()} hold {total:,} bytes, not the pinned "
            f"{chunked.size:,}: they are not the pinned uploads; refusing them"
        )
    # The folder holding `target` is written whole or not at all (rpo_bench.files).
    with atomic_folder(target.parent) as tmp:
        whole = hashlib.sha256()
        changed: list[str] = []
        with (tmp / target.name).open("wb") as out:
            for part, file, recorded in located:
                own = hashlib.sha256()
                with file.open("rb") as f:
                    while block := f.read(BLOCK):
                        whole.update(block)
                        own.update(block)
                        out.write(block)
                if recorded is not None and own.hexdigest() != recorded:
                    changed.append(part.distribution)
        got = whole.hexdigest()
        if got != chunked.sha256:
            blame = (
                f"{', '.join(changed)} changed since pip installed them (their bytes differ "
                "from their RECORD)"
                if changed
                else f"the installed {chunked.packages()} are not the pinned uploads"
            )
            raise ChunkError(
                f"joined file sha256 {got} != pinned {chunked.sha256}: {blame}; refusing "
                f"it. Reinstall with `{pip_install_command(chunked.parts, reinstall=True)}`"
            )
    return target
