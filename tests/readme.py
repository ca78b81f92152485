"""The README's fenced blocks, as a new user meets them: commands to run, and what they print.

A `bash` block is a command block: the README test runs it as written. Any other block (``text``,
``mermaid``) is shown, never run. An HTML comment on the line before a block tells the test what to
expect of it (GitHub renders nothing of it):

    <!-- readme-test: quickstart -->                `.ci/run` runs it (the Quickstart), not the README test
    <!-- readme-test: exit 1 -->                    the block ends with this status (a failing gate)
    <!-- readme-test: serves http://127.0.0.1:3000/readyz -->
                                                    a server: it must answer there, then it is stopped
    <!-- readme-test: output -->                    (on a text block) what the command block before it
                                                    prints: every line, in order; a line `...` skips
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_FENCE = re.compile(r"^( {0,3})```(\S*)\s*$")  # a block in a list item is indented
_DIRECTIVE = re.compile(r"^<!-- readme-test: (.+?) -->$")
# What a command line starts with in this README; a block that holds one must be a `bash` block.
COMMAND = re.compile(r"^(\. |\.tools/|\.venv/|dvc |git |flightdelay |python3? )")


@dataclass(frozen=True)
class Block:
    line: int  # 1-based line of the opening fence
    language: str
    text: str
    directive: str = ""

    @property
    def runs(self) -> bool:
        return self.language == "bash" and self.directive != "quickstart"

    def expected_exit(self) -> int:
        found = re.fullmatch(r"exit (\d+)", self.directive)
        return int(found.group(1)) if found else 0

    def serves(self) -> str | None:
        found = re.fullmatch(r"serves (http://127\.0\.0\.1:\d+/\S*)", self.directive)
        return found.group(1) if found else None


def blocks(path: Path) -> list[Block]:
    """Every fenced block of the markdown file, with the directive on the line before it."""
    lines = path.read_text().splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        fence = _FENCE.match(lines[index])
        if not fence:
            index += 1
            continue
        indent = len(fence.group(1))
        end = next((j for j in range(index + 1, len(lines)) if lines[j].strip() == "```"), None)
        if end is None:
            raise ValueError(f"{path.name}:{index + 1}: a fenced block that never closes")
        before = _DIRECTIVE.match(lines[index - 1].strip()) if index else None
        text = "\n".join(line[indent:] for line in lines[index + 1 : end]) + "\n"
        found.append(Block(index + 1, fence.group(2), text, before.group(1) if before else ""))
        index = end + 1
    return found


def unmatched(expected: str, output: str) -> str | None:
    """The first expected line that ``output`` does not print in order; ``...`` lines match anything."""
    printed = [line.rstrip() for line in output.splitlines()]
    position = 0
    for line in expected.splitlines():
        if line.strip() in ("", "..."):
            continue
        try:
            position = printed.index(line.rstrip(), position) + 1
        except ValueError:
            return line
    return None
