"""Each benchmark owns a marked section of a Markdown file, and rewrites only that section."""

from __future__ import annotations

from pathlib import Path


def replace_section(path: Path, name: str, body: str) -> None:
    """Put `body` between `<!-- name:start -->` and `<!-- name:end -->`, appending the pair if missing."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    content = path.read_text() if path.exists() else ""
    section = f"{start}\n{body.strip()}\n{end}"
    if start in content and end in content:
        before, rest = content.split(start, 1)
        content = f"{before}{section}{rest.split(end, 1)[1]}"
    else:
        content = f"{content.rstrip()}\n\n{section}\n".lstrip()
    path.write_text(content)
