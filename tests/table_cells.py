"""Read back the markdown tables the benchmarks write."""
from typing import List


def markdown_cells(text: str) -> List[List[str]]:
    """The stripped cells of every row of the markdown table in ``text``: the column titles
    first, then the body; the alignment rule under the titles is left out."""
    lines = [line.strip() for line in text.splitlines() if line.startswith('|')]
    rows = [[cell.strip() for cell in line.strip('|').split('|')] for line in lines]
    return rows[:1] + rows[2:]
