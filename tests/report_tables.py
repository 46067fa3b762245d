"""Reading report.md back into tables, for tests that check its numbers against report.json."""

from __future__ import annotations


def parse_markdown_tables(text: str) -> dict[str, list[dict[str, str]]]:
    """Tables of a report.md by section heading: a list of rows as {column: cell}."""
    tables: dict[str, list[dict[str, str]]] = {}
    heading = None
    header: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("## "):
            heading, header = line[3:].strip(), None
            continue
        if not line.startswith("|") or heading is None:
            header = None if not line.startswith("|") else header
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
            tables[heading] = []
        elif set(line.replace("|", "").strip()) <= {"-"}:
            continue
        else:
            tables[heading].append(dict(zip(header, cells)))
    return tables
