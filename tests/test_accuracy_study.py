"""The accuracy study's partial and resumed runs (the full three-size run is in
tests/test_benchmark.py's quick run)."""
import glob
import os.path as osp

import pytest

from projects.synthetic_pose import accuracy_study
from table_cells import markdown_cells


def study(out_dir, *args):
    """A --quick study at 64x48 only, in-process; returns its rows."""
    return accuracy_study.run([
        '--quick', '--threads', '1', '--no-progress', '--out-dir', out_dir, '--input-sizes',
        '48', '64', *args
    ])


def run_dirs(out_dir, run):
    """The runner's timestamped log directories of one run: one per training."""
    return glob.glob(osp.join(out_dir, run, '2*'))


@pytest.mark.slow
def test_resume_trains_only_the_missing_runs(tmp_path):
    out_dir = str(tmp_path)
    first = study(out_dir, '--models', 'Poseur')
    assert [(r['model'], r['input']) for r in first] == [('Poseur', '64x48')]
    # without its heatmap baseline the comparison is absent, not zero
    assert first[0]['AP_vs_heatmap'] is None
    table = markdown_cells(open(osp.join(out_dir, 'accuracy_study.md')).read())
    assert table[1][table[0].index('AP - heatmap AP (points)')] == 'n/a'

    resumed = study(out_dir, '--resume')
    assert [(r['model'], r['input']) for r in resumed] == [('Poseur', '64x48'),
                                                           ('heatmap', '64x48'),
                                                           ('RLE', '64x48')]
    assert len(run_dirs(out_dir, 'Poseur-64x48')) == 1  # kept, not trained again
    assert len(run_dirs(out_dir, 'heatmap-64x48')) == 1
    poseur, heatmap = resumed[0], resumed[1]
    for key in ('AP', 'AR', 'train_s', 'iterations'):
        assert poseur[key] == pytest.approx(first[0][key], abs=5e-4)
    assert poseur['AP_vs_heatmap'] == pytest.approx(100 * (poseur['AP'] - heatmap['AP']),
                                                    abs=0.051)
    table = open(osp.join(out_dir, 'accuracy_study.md')).read()
    assert table.count('64x48') == 3 and 'n/a' not in table

    # each run logged into its own directory (runners in one process share named visualizers)
    for run in ('Poseur-64x48', 'heatmap-64x48', 'RLE-64x48'):
        scalars = glob.glob(osp.join(out_dir, run, '2*', 'vis_data', 'scalars.json'))
        assert len(scalars) == 1 and '"coco/AP"' in open(scalars[0]).read(), run

    # nothing left to train: the tables are rewritten from the kept rows alone
    again = study(out_dir, '--resume')
    assert again == resumed
    assert len(run_dirs(out_dir, 'RLE-64x48')) == 1


def test_resume_refuses_other_settings_and_missing_studies(tmp_path):
    out_dir = str(tmp_path / 'study')
    with pytest.raises(FileNotFoundError, match='no study to resume'):
        study(out_dir, '--resume')
    study(out_dir, '--models', 'RLE')
    with pytest.raises(ValueError, match="'epochs': 1.*'epochs': 2.*--epochs"):
        study(out_dir, '--resume', '--epochs', '2')
    assert len(run_dirs(out_dir, 'RLE-64x48')) == 1


def test_rows_are_ordered_largest_input_first_then_by_model():
    rows = [dict(model=m, input=i) for m, i in (('RLE', '64x48'), ('Poseur', '64x48'),
                                                ('heatmap', '256x192'), ('Poseur', '128x96'),
                                                ('heatmap', '64x48'), ('Poseur', '256x192'))]
    assert [(r['model'], r['input']) for r in accuracy_study.order_rows(rows)] == [
        ('Poseur', '256x192'), ('heatmap', '256x192'), ('Poseur', '128x96'), ('Poseur', '64x48'),
        ('heatmap', '64x48'), ('RLE', '64x48')]
