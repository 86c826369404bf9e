"""Which files an ingest looks at: directory walking with hidden files and `.cliniqignore`."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

IGNORE_FILE = ".cliniqignore"


@dataclass(frozen=True)
class IgnoreRule:
    """One `.cliniqignore` line, relative to the directory holding the file.

    Like `.gitignore`, minus negation: `name` or `*.tsv` match at any depth below, a pattern
    with a slash (`drafts/old.md`, `/README.md`) is anchored, a trailing slash matches folders only.
    """

    base: str  # directory of the ignore file, as given to the walk
    pattern: str
    anchored: bool
    dir_only: bool

    def matches(self, rel_path: str, name: str, is_dir: bool) -> bool:
        if self.dir_only and not is_dir:
            return False
        if self.anchored:
            return fnmatchcase(rel_path, self.pattern)
        return fnmatchcase(name, self.pattern)


def parse_ignore_file(path: Path, base: str) -> list[IgnoreRule]:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    rules = []
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        dir_only = line.endswith("/")
        line = line.rstrip("/")
        anchored = "/" in line
        line = line.lstrip("/")
        if line:
            rules.append(IgnoreRule(base, line, anchored, dir_only))
    return rules


def _ignored(rules: list[IgnoreRule], full: str, name: str, is_dir: bool) -> bool:
    for rule in rules:
        rel = os.path.relpath(full, rule.base).replace(os.sep, "/") if rule.anchored else ""
        if rule.matches(rel, name, is_dir):
            return True
    return False


def _walk(directory: str, inherited: list[IgnoreRule], seen_dirs: set[str]) -> Iterator[Path]:
    real = os.path.realpath(directory)
    if real in seen_dirs:  # a symlink loop, or the same folder given twice
        return
    seen_dirs.add(real)
    try:
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError:
        return
    rules = inherited
    if any(e.name == IGNORE_FILE for e in entries):
        rules = [*inherited, *parse_ignore_file(Path(directory, IGNORE_FILE), directory)]
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            is_dir = entry.is_dir()
            is_file = not is_dir and entry.is_file()
        except OSError:
            continue
        if (is_dir or is_file) and _ignored(rules, entry.path, entry.name, is_dir):
            continue
        if is_dir:
            yield from _walk(entry.path, rules, seen_dirs)
        elif is_file and not entry.name.endswith(".meta.yaml"):  # a sidecar, read with its file
            yield Path(entry.path)


def iter_files(paths: Sequence[Path]) -> Iterator[Path]:
    """Expand files and directories into files, in a deterministic order.

    Directories are walked recursively in name order, skipping hidden entries and whatever a
    `.cliniqignore` in a walked directory lists (for that directory's subtree). Files of any type
    are yielded, and so is a given path that does not exist: the loader then says why it skips
    them, instead of the file vanishing silently. Each file is yielded once.
    """
    seen_files: set[str] = set()
    seen_dirs: set[str] = set()
    for path in paths:
        candidates = _walk(str(path), [], seen_dirs) if Path(path).is_dir() else iter([Path(path)])
        for file in candidates:
            key = os.path.realpath(file)
            if key not in seen_files:
                seen_files.add(key)
                yield file
