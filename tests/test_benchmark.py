"""The benchmark command end to end (--quick) and its measuring parts."""
import csv
import glob
import math
import os.path as osp
import subprocess
import sys
import time

import onnx
import pytest
import torch
from mmengine.config import Config
from mmpose.registry import MODELS

from poseur_mm.ops import emsda_sampling
from poseur_tiny_checkpoint import CONFIG as TINY_CONFIG
from table_cells import markdown_cells
from tools.analysis import benchmark, emsda_benchmark, measure, ort_benchmark, report

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

MODEL_NAMES = [
    'td-reg_res50_poseur-8xb32-325e_coco-256x192', 'td-hm_res50_8xb32-325e_coco-256x192',
    'td-reg_res50_rle-8xb32-325e_coco-256x192'
]
HEATMAP = MODEL_NAMES[1]
BACKBONE = 'ResNet-50 backbone'
# torchvision's ResNet-50 has 25,557,032 parameters, 2,049,000 of them in the classifier
RESNET50_BACKBONE_PARAMS = 25_557_032 - 2_049_000


def read_csv(path):
    """Rows of a benchmark CSV with numbers as floats."""
    with open(path) as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        for key, value in row.items():
            try:
                row[key] = float(value)
            except ValueError:
                pass
    return rows


@pytest.fixture(scope='module')
def quick_run(tmp_path_factory):
    """The command as a user runs it, in its own process (it tunes malloc to measure memory)."""
    out_dir = str(tmp_path_factory.mktemp('benchmark'))
    command = [sys.executable, '-W', 'ignore', '-m', 'tools.analysis.benchmark', '--quick']
    command += ['--threads', '1', '--no-progress', '--out-dir', out_dir, '--accuracy-study']
    subprocess.run(command, check=True, cwd=REPO)
    results = dict(
        models=read_csv(osp.join(out_dir, 'cost_table.csv')),
        emsda=read_csv(osp.join(out_dir, 'emsda_benchmark.csv')),
        onnxruntime=read_csv(osp.join(out_dir, 'onnxruntime.csv')),
        accuracy=read_csv(osp.join(out_dir, 'accuracy_study.csv')))
    return results, out_dir


@pytest.mark.slow
def test_quick_run_has_one_row_per_model_and_backbone(quick_run):
    rows = {r['name']: r for r in quick_run[0]['models']}
    assert list(rows) == MODEL_NAMES + [BACKBONE]
    assert [r['kind'] for r in rows.values()] == ['model'] * 3 + ['backbone']
    assert all(r['input'] == '64x48' for r in rows.values())
    for row in rows.values():
        for key in ('params_m', 'gflops', 'latency_ms', 'ms_per_image', 'images_per_s', 'peak_mib'):
            assert math.isfinite(row[key]) and row[key] > 0, (row['name'], key)
        assert row['images_per_s'] == pytest.approx(1e3 / row['ms_per_image'])
    assert rows[BACKBONE]['params_m'] * 1e6 == pytest.approx(RESNET50_BACKBONE_PARAMS, abs=0.5)


@pytest.mark.slow
def test_quick_run_ratios_come_from_the_same_rows(quick_run):
    rows = {r['name']: r for r in quick_run[0]['models']}
    base, backbone = rows[HEATMAP], rows[BACKBONE]
    for name in MODEL_NAMES:
        row = rows[name]
        assert row['baseline'] == HEATMAP and row['backbone'] == BACKBONE
        for key, ratio in (('params_m', 'params_vs_baseline'), ('gflops', 'gflops_vs_baseline'),
                           ('latency_ms', 'latency_vs_baseline'), ('images_per_s',
                                                                   'throughput_vs_baseline')):
            assert row[ratio] == pytest.approx(row[key] / base[key]), (name, ratio)
        for key, pct in (('gflops', 'head_neck_gflops_pct'),
                         ('latency_ms', 'head_neck_latency_pct'), ('ms_per_image',
                                                                   'head_neck_ms_per_image_pct')):
            assert row[pct] == pytest.approx(100 * (row[key] / backbone[key] - 1)), (name, pct)
    assert rows[HEATMAP]['gflops_vs_baseline'] == 1
    assert backbone['baseline'] == '' and math.isnan(backbone['gflops_vs_baseline'])
    # a heatmap head and Poseur's neck + decoder cost FLOPs on top of the backbone
    assert rows[HEATMAP]['head_neck_gflops_pct'] > 0
    assert rows[MODEL_NAMES[0]]['head_neck_gflops_pct'] > 0


@pytest.mark.slow
def test_quick_run_writes_table_and_plot(quick_run):
    results, out_dir = quick_run
    table = open(osp.join(out_dir, 'cost_table.md')).read()
    assert 'torch threads 1' in table
    cells = {line[0]: line[1:4] for line in markdown_cells(table)[1:]}
    for row in results['models']:
        assert cells[row['name']] == ['64x48', f"{row['params_m']:.2f}", f"{row['gflops']:.2f}"]
    with open(osp.join(out_dir, 'cost_table.png'), 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    assert 'EMSDA micro-benchmark' in open(osp.join(out_dir, 'emsda_benchmark.md')).read()


@pytest.mark.slow
def test_quick_run_includes_emsda_micro_benchmark(quick_run):
    rows = quick_run[0]['emsda']
    assert [(r['batch'], r['variant']) for r in rows] == [(b, v) for b in (1, 2)
                                                          for v in emsda_benchmark.VARIANTS]
    by_case = {(r['batch'], r['variant']): r for r in rows}
    for row in rows:
        base = by_case[(row['batch'], 'emsda')]
        for key, ratio in (('forward_ms', 'forward_vs_emsda'),
                           ('forward_backward_ms', 'forward_backward_vs_emsda'), ('peak_mib',
                                                                                  'peak_vs_emsda')):
            assert math.isfinite(row[key]) and row[key] > 0, (row['variant'], key)
            assert row[ratio] == pytest.approx(row[key] / base[key])
    # the per-head copy holds H = 8 copies of the memory and their gradients
    assert by_case[(2, 'per-head-copy')]['peak_mib'] > 3 * by_case[(2, 'emsda')]['peak_mib']


@pytest.mark.slow
def test_quick_run_includes_onnxruntime_rows_over_the_backbone(quick_run):
    rows, out_dir = quick_run[0]['onnxruntime'], quick_run[1]
    poseur = MODEL_NAMES[0]
    models = [f'{poseur} (one pass)', f'{poseur} (flip test)'] + MODEL_NAMES[1:]
    models.append(ort_benchmark.BACKBONE)
    assert [(r['batch'], r['path'], r['model']) for r in rows] == [
        (b, p, m) for b in (1, 2) for p in sorted(ort_benchmark.PATHS) for m in models]
    base = {(r['batch'], r['path']): r for r in rows if r['model'] == ort_benchmark.BACKBONE}
    for row in rows:
        assert row['threads'] == 1 and row['ms'] > 0 and row['cpu_ms'] > 0
        backbone = base[(row['batch'], row['path'])]
        assert row['vs_backbone_pct'] == pytest.approx(100 * (row['ms'] / backbone['ms'] - 1))
        assert row['cpu_vs_backbone_pct'] == pytest.approx(
            100 * (row['cpu_ms'] / backbone['cpu_ms'] - 1))
    assert 'onnxruntime 1.' in open(osp.join(out_dir, 'onnxruntime.md')).read()


def test_ort_rows_time_both_paths_of_a_poseur_model_and_its_backbone(tmp_path):
    """Small enough for the fast tier: the tiny Poseur config, one round."""
    input_size = tuple(Config.fromfile(TINY_CONFIG).codec['input_size'])
    rows = ort_benchmark.measure([TINY_CONFIG], input_size, threads=(1, ), batches=(1, ),
                                 repeats={1: 1}, warmup=0, out_dir=str(tmp_path))
    name = osp.splitext(osp.basename(TINY_CONFIG))[0]
    models = [f'{name} (one pass)', f'{name} (flip test)', ort_benchmark.BACKBONE]
    assert sorted((r['model'], r['path']) for r in rows) == sorted(
        (m, p) for m in models for p in ort_benchmark.PATHS)
    for row in rows:
        assert row['ms'] > 0 and (row['threads'], row['batch']) == (1, 1)
        if row['model'] == ort_benchmark.BACKBONE:
            assert row['vs_backbone_pct'] == row['cpu_vs_backbone_pct'] == 0
    # the flip-test row times a graph that runs the network twice (the graphs are written in
    # build_rows' order: one pass, flip test, backbone); a timing comparison of one round
    # would be flaky on a shared machine
    graphs = [onnx.load(str(tmp_path / f'ort_row{i}.onnx')).graph for i in range(3)]
    convs = [sum(node.op_type == 'Conv' for node in graph.node) for graph in graphs]
    assert convs[1] == 2 * convs[0] and convs[2] < convs[0]


def test_ort_rows_refuse_mixed_input_sizes(tmp_path):
    """Refused before anything is timed, naming both ways out."""
    configs = [TINY_CONFIG, osp.join(REPO, benchmark.DEFAULT_CONFIGS[0])]
    with pytest.raises(ValueError, match='different input sizes.*--skip-onnxruntime'):
        benchmark.run(configs + ['--skip-emsda', '--no-progress', '--out-dir', str(tmp_path)])
    assert not osp.exists(osp.join(tmp_path, 'cost_table.md'))


@pytest.mark.slow
def test_quick_run_includes_the_accuracy_study(quick_run):
    rows, out_dir = quick_run[0]['accuracy'], quick_run[1]
    sizes = ['256x192', '128x96', '64x48']
    assert [(r['model'], r['input']) for r in rows] == [(m, s) for s in sizes
                                                        for m in ('Poseur', 'heatmap', 'RLE')]
    by_case = {(r['model'], r['input']): r for r in rows}
    for row in rows:
        for key in ('AP', 'AP .5', 'AP .75', 'AR'):
            assert 0 <= row[key] <= 1, (row['model'], row['input'], key)
        assert row['iterations'] == 1 and row['train_s'] > 0  # --quick: 4 images, 1 epoch
        baseline = by_case[('heatmap', row['input'])]['AP']
        assert row['AP_vs_heatmap'] == pytest.approx(100 * (row['AP'] - baseline), abs=0.051)
    # each run trained in its own work directory at its own crop size (the runner's config dump)
    for model, size in by_case:
        dumped = glob.glob(osp.join(out_dir, f'{model}-{size}', '*.py'))
        height, width = map(int, size.split('x'))
        assert len(dumped) == 1
        assert tuple(Config.fromfile(dumped[0]).model.head.decoder.input_size) == (width, height)
    table = open(osp.join(out_dir, 'accuracy_study.md')).read()
    assert 'torch threads 1' in table
    assert [line[0] for line in markdown_cells(table)].count('Poseur') == 3
    with open(osp.join(out_dir, 'accuracy_study.png'), 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'


def test_emsda_flops_are_counted_analytically():
    torch.manual_seed(0)
    batch, queries, heads, levels, points, channels = 2, 5, 4, 2, 3, 16
    layer = MODELS.build(
        dict(
            type='EMSDAttention',
            embed_dims=channels,
            num_heads=heads,
            num_levels=levels,
            num_points=points)).eval()
    shapes = torch.tensor([[6, 4], [3, 2]])
    num_value = 6 * 4 + 3 * 2

    class Wrapped(torch.nn.Module):

        def __init__(self):
            super().__init__()
            self.layer = layer

        def forward(self, query):
            return self.layer(query,
                              torch.zeros_like(query), torch.randn(batch, num_value, channels),
                              torch.rand(batch, queries, 2), shapes)

    flops, _ = benchmark.count_flops(Wrapped(), torch.randn(batch, queries, channels))
    points_total = batch * queries * heads * levels * points
    expected = (
        batch * queries * channels * heads * levels * points * 3  # offsets + weights
        + points_total * 4 * channels  # bilinear gather of 4 corners
        + batch * queries * heads * channels * (channels // heads)  # head projections
        + batch * queries * channels * channels)  # output projection
    assert flops == expected
    # the op itself is seen by the FLOP analysis, not skipped
    sampled = benchmark.count_flops(SampleOnly(shapes), torch.randn(batch, num_value, channels))[0]
    assert sampled == points_total * 4 * channels


class SampleOnly(torch.nn.Module):

    def __init__(self, shapes):
        super().__init__()
        self.shapes = shapes

    def forward(self, value):
        batch, heads, levels, points = value.shape[0], 4, 2, 3
        locations = torch.rand(batch, 5, heads, levels, points, 2)
        weights = torch.rand(batch, 5, heads, levels, points)
        return emsda_sampling(value, self.shapes, locations, weights)


def test_peak_memory_sees_a_temporary_allocation():

    def allocate():
        block = torch.ones(64 * 2**18)  # 64 MiB of float32, freed on return
        return float(block[0])

    peak = measure.peak_memory_mib(allocate, torch.device('cpu'))
    if math.isnan(peak):
        pytest.skip('no glibc / procfs: peak memory is not measured on this platform')
    assert 60 < peak < 80
    assert measure.peak_memory_mib(lambda: None, torch.device('cpu')) < 8


def test_time_interleaved_reports_wall_and_cpu_medians():
    def spin():
        end = time.process_time() + 0.02
        while time.process_time() < end:
            pass

    timings = measure.time_interleaved(
        dict(sleep=lambda: time.sleep(0.02), spin=spin, noop=lambda: None),
        warmup=1,
        repeats=3,
        device=torch.device('cpu'))
    assert timings['sleep'].ms >= 20 and timings['noop'].ms < timings['sleep'].ms
    # sleeping takes wall time but no CPU time; spinning takes both
    assert timings['sleep'].cpu_ms < 5 and timings['spin'].cpu_ms >= 20


@pytest.mark.slow
def test_channels_last_run_converts_models_and_counts_the_same_flops():
    config = osp.join(REPO, benchmark.DEFAULT_CONFIGS[0])
    rows = {}
    for channels_last in (False, True):
        entries = benchmark.load_entries([config], input_size=(48, 64))
        rows[channels_last], _ = benchmark.measure(
            entries, batch=2, warmup=0, repeats=1, device=torch.device('cpu'), progress=False,
            channels_last=channels_last)
        conv_weights = [m.weight for m in entries[0].module.modules()
                        if isinstance(m, torch.nn.Conv2d) and m.kernel_size != (1, 1)]
        assert conv_weights and all(
            w.is_contiguous(memory_format=torch.channels_last) == channels_last
            for w in conv_weights)
    for contiguous, channels_last in zip(rows[False], rows[True]):
        assert (contiguous['memory_format'], channels_last['memory_format']) == ('contiguous',
                                                                                 'channels_last')
        assert channels_last['gflops'] == contiguous['gflops'] > 0
        assert channels_last['ms_per_image'] > 0


def test_missing_config_names_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match='not found'):
        benchmark.load_entries([str(tmp_path / 'nope.py')])


def test_tables_format_every_column_and_mark_missing_values(tmp_path):
    rows = [dict(name='a', ms=1.234, ratio=math.nan, note=None, n=2),
            dict(name='bb', ms=10.0, ratio=0.5, note='x', n=3)]
    columns = (('name', 'name', '{}'), ('time (ms)', 'ms', '{:.1f}'),
               ('ratio', 'ratio', '{:+.1f}%'), ('n', 'n', '{}'))
    table = report.markdown_table(rows, columns, missing='n/a')
    assert markdown_cells(table) == [['name', 'time (ms)', 'ratio', 'n'], ['a', '1.2', 'n/a', '2'],
                                     ['bb', '10.0', '+0.5%', '3']]
    rule = table.splitlines()[1].strip('|').split('|')
    assert rule[0].startswith(':') and all(cell.endswith(':') for cell in rule[1:])  # numbers
    md_path, csv_path = report.write_tables(str(tmp_path), 'table', 'header', table, rows,
                                            ('name', 'ratio', 'note', 'n'))
    assert open(md_path).read() == 'header\n\n' + table + '\n'
    assert open(csv_path).read().splitlines() == ['name,ratio,note,n', 'a,nan,nan,2', 'bb,0.5,x,3']
