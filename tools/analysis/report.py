"""Write a measured table as markdown (with a header line) and as CSV, through pandas."""
import os
import os.path as osp
from typing import List, Sequence, Tuple

import pandas as pd


def markdown_table(rows: List[dict], columns: Sequence[Tuple[str, str, str]],
                   missing: str = '-') -> str:
    """``rows`` as a markdown table.

    Args:
        rows (list[dict]): one dict per table row.
        columns (Sequence[tuple]): per column its (title, row key, ``str.format`` template),
            e.g. ``('GFLOPs', 'gflops', '{:.2f}')``.
        missing (str): written for NaN and None. Defaults to ``'-'``.

    Returns:
        str: the table; columns of numbers are right-aligned.
    """
    frame = pd.DataFrame(rows)
    cells = pd.DataFrame({
        title: frame[key].map(template.format, na_action='ignore').fillna(missing)
        for title, key, template in columns
    })
    align = ['right' if pd.api.types.is_numeric_dtype(frame[key]) else 'left'
             for _, key, _ in columns]
    # the cells are formatted already: tabulate must not parse them back into numbers
    return cells.to_markdown(index=False, colalign=align, disable_numparse=True)


def write_tables(out_dir: str, stem: str, header: str, markdown: str, rows: List[dict],
                 fields: Sequence[str]) -> List[str]:
    """Write ``<stem>.md`` (``header``, then the ``markdown`` table) and ``<stem>.csv``
    (``rows`` with columns ``fields``, NaN and None as ``nan``) into ``out_dir``.

    Returns:
        list[str]: the markdown and CSV paths.
    """
    os.makedirs(out_dir, exist_ok=True)
    md_path, csv_path = (osp.join(out_dir, f'{stem}.{ext}') for ext in ('md', 'csv'))
    with open(md_path, 'w') as f:
        f.write(header + '\n\n' + markdown + '\n')
    pd.DataFrame(rows, columns=list(fields)).to_csv(csv_path, index=False, na_rep='nan')
    return [md_path, csv_path]
