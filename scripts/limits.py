#!/usr/bin/env python3
"""Lists what breaks the size limits in src/: functions longer than 60 lines
(from the `fn` line to its closing brace, outside `#[cfg(test)]` modules) and
files longer than 800 lines. Relies on rustfmt's layout: a body closes with
a `}` at the indentation of its `fn` line. Exits 1 when anything is listed.

    python3 scripts/limits.py [--fn-lines 60] [--file-lines 800] [--skip PATH ...]
"""
import argparse
import pathlib
import re
import sys

FN = re.compile(r"^(\s*)(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?fn\s+(\w+)")
TEST_MOD = re.compile(r"^(\s*)(?:pub(?:\([^)]*\))?\s+)?mod\s+\w+\s*\{")


def closing(lines, start, indent):
    """Index of the line that closes the block opened at `start`, or None."""
    for j in range(start + 1, len(lines)):
        if lines[j].rstrip() == indent + "}":
            return j
    return None


def long_fns(path, limit):
    lines = path.read_text().split("\n")
    out, i = [], 0
    while i < len(lines):
        line = lines[i]
        if line.strip() == "#[cfg(test)]" and i + 1 < len(lines):
            m = TEST_MOD.match(lines[i + 1])
            if m:
                end = closing(lines, i + 1, m.group(1))
                i = (end if end is not None else len(lines)) + 1
                continue
        m = FN.match(line)
        if m:
            indent = m.group(1)
            # The signature may span lines; a `;` before any `{` is a declaration.
            j = i
            while j < len(lines) and "{" not in lines[j] and not lines[j].rstrip().endswith(";"):
                j += 1
            if j < len(lines) and "{" in lines[j]:
                one_line = lines[j].count("{") == lines[j].count("}")
                end = j if one_line else closing(lines, j, indent)
                if end is not None:
                    n = end - i + 1
                    if n > limit:
                        out.append((i + 1, m.group(2), n))
        i += 1
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fn-lines", type=int, default=60)
    ap.add_argument("--file-lines", type=int, default=800)
    ap.add_argument("--skip", nargs="*", default=[])
    ap.add_argument("--root", default="src")
    a = ap.parse_args()
    skip = {pathlib.Path(s) for s in a.skip}
    found = False
    for path in sorted(pathlib.Path(a.root).rglob("*.rs")):
        if path in skip:
            continue
        n = len(path.read_text().splitlines())
        if n > a.file_lines:
            print(f"{path}: {n} lines (file limit {a.file_lines})")
            found = True
        for line, name, length in long_fns(path, a.fn_lines):
            print(f"{path}:{line}: fn {name} is {length} lines (limit {a.fn_lines})")
            found = True
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
