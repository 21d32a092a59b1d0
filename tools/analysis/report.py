"""Write a measured table as markdown (with a header line) and as CSV."""
import csv
import os
import os.path as osp
from typing import List, Sequence


def write_tables(out_dir: str, stem: str, header: str, markdown: str, rows: List[dict],
                 fields: Sequence[str]) -> List[str]:
    """Write ``<stem>.md`` (``header``, then the ``markdown`` table) and ``<stem>.csv``
    (``rows`` with columns ``fields``) into ``out_dir``.

    Returns:
        list[str]: the markdown and CSV paths.
    """
    os.makedirs(out_dir, exist_ok=True)
    md_path, csv_path = (osp.join(out_dir, f'{stem}.{ext}') for ext in ('md', 'csv'))
    with open(md_path, 'w') as f:
        f.write(header + '\n\n' + markdown + '\n')
    with open(csv_path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return [md_path, csv_path]
