"""tools/analysis/ort_profile.py: splitting onnxruntime's profile by model part."""
import pytest

from poseur_tiny_checkpoint import CONFIG as TINY_CONFIG
from tools.analysis import ort_profile


def run(ts, dur):
    return dict(cat='Session', name='model_run', ts=ts, dur=dur)


def node(name, op_type, ts, dur_us):
    return dict(cat='Node', name=f'{name}_kernel_time', ts=ts, dur=dur_us,
                args=dict(op_name=op_type))


def test_split_profile_sums_each_part_per_run_without_the_first_run():
    events = [
        run(0, 100), run(200, 100), run(400, 100),
        # first run: allocations, left out whatever they cost
        node('/backbone/conv1/Conv', 'Conv', 10, 90_000),
        node('/neck/convs.0/conv/Conv', 'Conv', 20, 90_000),
    ]
    for start in (200, 400):
        events += [
            node('/backbone/conv1/Conv', 'Conv', start + 1, 10_000),
            node('/backbone/layer1/relu', 'Relu', start + 2, 2_000),
            node('/neck/convs.0/conv/Conv', 'Conv', start + 3, 3_000),
            node('/query_decoder/layers.0/cross_attn/Gather_10', 'Gather', start + 4, 500),
            node('/query_decoder/layers.0/cross_attn/MatMul', 'MatMul', start + 5, 400),
            # the per-head projection: a numbered MatMul, not sampling
            node('/query_decoder/layers.0/cross_attn/MatMul_1', 'MatMul', start + 6, 60),
            node('/query_decoder/layers.0/cross_attn/Mul_3', 'Mul', start + 7, 40),
            node('/query_decoder/layers.0/self_attn/Softmax', 'Softmax', start + 8, 30),
            node('/query_decoder/layers.0/ffn/ffn.0/MatMul/MatMulAddFusion', 'Gemm', start + 9,
                 150),
            node('/query_decoder/Sigmoid', 'Sigmoid', start + 10, 20),
            node('ReorderOutput_token_5', 'ReorderOutput', start + 11, 600),
        ]
    # a session event that is not a run is ignored
    events += [dict(cat='Session', name='session_initialization', ts=0, dur=5)]
    frame = ort_profile.split_profile(events).set_index('part')
    expected = {  # per run: (nodes, ms)
        'backbone': (2, 12.0),
        'neck': (1, 3.0),
        'EMSDA sampling': (2, 0.9),
        'cross-attention, other': (2, 0.1),
        'self-attention': (1, 0.03),
        'FFN': (1, 0.15),
        'decoder, other': (1, 0.02),
        'other': (1, 0.6),
    }
    assert list(frame.index) == list(expected)
    for part, (nodes, ms) in expected.items():
        assert frame.loc[part, 'nodes'] == nodes, part
        assert frame.loc[part, 'ms'] == pytest.approx(ms), part
        assert frame.loc[part, 'pct_of_backbone'] == pytest.approx(100 * ms / 12.0), part


def test_split_profile_needs_two_runs_and_a_backbone():
    with pytest.raises(ValueError, match='1 run.*at least two'):
        ort_profile.split_profile([run(0, 10), node('/backbone/Conv', 'Conv', 1, 5)])
    with pytest.raises(ValueError, match='no node.*/backbone/'):
        ort_profile.split_profile([run(0, 10), run(20, 10), node('/neck/Conv', 'Conv', 21, 5)])


def test_profile_of_the_tiny_graph_finds_every_layer_of_the_model(tmp_path):
    frame = ort_profile.main([TINY_CONFIG, '--runs', '2', '--work-dir', str(tmp_path)])
    parts = frame.set_index('part')
    # the tiny config has 2 decoder layers: one Gather and one weighting MatMul each
    assert parts.loc['EMSDA sampling', 'nodes'] == 4
    assert (parts['ms'] > 0).all() and (parts['nodes'] > 0).all()
    assert len(list(tmp_path.glob('profile*.json'))) == 1
