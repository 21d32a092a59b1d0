"""Checkpoints of the authors' Poseur release (MMPose 0.x) load strictly through MMPose's own
loading paths and convert with tools/model_converters/poseur_release_to_mmpose.py.

Release-format files are made here, independently of poseur_mm's conversion code:
- from the release's key tables (shared/design/release_keys/<setting>.txt: every key, shape and
  dtype of a published setting's state dict) with random values, saved as mmcv 1.x saved them
  (``_metadata`` with module versions, MMPose 0.x ``meta`` with a NumPy 1.x ``best_score``,
  ``optimizer``). The COCO-WholeBody HRNet tables are not in the design notes: they are the COCO
  HRNet tables with 133 keypoints in the K-sized tensors (checked on the ResNet-50 pair below);
- from a small trained poseur_mm model renamed to the release's names.
The name mapping (``HEAD_NAMES``) is written from release_checkpoints.md section 2.
"""
import contextlib
import importlib.util
import io
import logging
import os
import os.path as osp
import pickle
import re
import subprocess
import sys
import types
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint, _load_checkpoint_to_model
from mmpose.apis import MMPoseInferencer, inference_topdown, init_model

import poseur_mm  # noqa: F401  (allow-list, registration)
from poseur_mm.compat.checkpoint_globals import MMENGINE_CHECKPOINT_GLOBALS
from poseur_tiny_checkpoint import CONFIG as TINY_CONFIG
from tiny_model import COCO_ROOT

ROOT = osp.join(osp.dirname(__file__), '..')
TABLES = osp.join(ROOT, '..', 'shared', 'design', 'release_keys')
CONVERTER = osp.join(ROOT, 'tools', 'model_converters', 'poseur_release_to_mmpose.py')
IMAGE = osp.join(COCO_ROOT, '000000197388.jpg')
BODY = osp.join(ROOT, 'configs', 'body_2d_keypoint', 'poseur', 'coco')
WHOLEBODY = osp.join(ROOT, 'configs', 'wholebody_2d_keypoint', 'poseur', 'coco-wholebody')

# setting -> (key table, keypoints if not the table's, poseur_mm config)
SETTINGS = {
    'res50': ('res50', None, osp.join(BODY, 'td-reg_res50_poseur-8xb32-325e_coco-256x192.py')),
    'mobilenetv2': ('mobilenetv2', None,
                    osp.join(BODY, 'td-reg_mobilenetv2_poseur-8xb32-325e_coco-256x192.py')),
    'mobilenetv2_dec12': ('mobilenetv2_dec12', None, osp.join(
        BODY, 'td-reg_mobilenetv2_poseur-dec12-8xb32-325e_coco-256x192.py')),
    'hrnet_w32': ('hrnet_w32', None,
                  osp.join(BODY, 'td-reg_hrnet-w32_poseur-8xb32-325e_coco-256x192.py')),
    'hrnet_w48': ('hrnet_w48', None,
                  osp.join(BODY, 'td-reg_hrnet-w48_poseur-8xb32-325e_coco-384x288.py')),
    'wholebody_res50': ('wholebody_res50', None, osp.join(
        WHOLEBODY, 'td-reg_res50_poseur-8xb32-325e_coco-wholebody-256x192.py')),
    'wholebody_hrnet_w32': ('hrnet_w32', 133, osp.join(
        WHOLEBODY, 'td-reg_hrnet-w32_poseur-8xb32-325e_coco-wholebody-256x192.py')),
    'wholebody_hrnet_w48': ('hrnet_w48', 133, osp.join(
        WHOLEBODY, 'td-reg_hrnet-w48_poseur-8xb32-325e_coco-wholebody-256x192.py')),
}
SLOW_SETTINGS = ('hrnet_w32', 'hrnet_w48', 'wholebody_hrnet_w32', 'wholebody_hrnet_w48')
# rows per keypoint of the release's K-sized tensors: 2K coarse outputs, K class embeddings
K_SIZED = {
    'keypoint_head.transformer.fc_coord.linear.weight': 2,
    'keypoint_head.transformer.fc_coord.linear.bias': 2,
    'keypoint_head.transformer.fc_sigma.linear.weight': 2,
    'keypoint_head.transformer.fc_sigma.linear.bias': 2,
    'keypoint_head.transformer.pos_embed.weight': 1,
}
# The release hard-codes 8 EMSDA heads (its multi_scale_deform_attn.py:644).
RELEASE_HEADS = 8
RELEASE_PRIOR_MEAN = 0.5

# release name after 'keypoint_head.' <-> poseur_mm name after 'head.'
HEAD_NAMES = [
    ('transformer.fc_coord.linear.{w}', 'coarse_coord.{w}'),
    ('transformer.fc_sigma.linear.{w}', 'coarse_sigma.{w}'),
    ('transformer.level_embeds', 'level_embed'),
    ('transformer.pos_trans.{w}', 'keypoint_encoder.content_proj.{w}'),
    ('transformer.pos_trans_norm.{w}', 'keypoint_encoder.content_norm.{w}'),
    ('transformer.pos_embed.weight', 'keypoint_encoder.class_embed.weight'),
    ('transformer.decoder.layers.{l}.attentions.0.attn.{mha}',
     'query_decoder.layers.{l}.self_attn.{mha}'),
    ('transformer.decoder.layers.{l}.attentions.1.{msda}.{w}',
     'query_decoder.layers.{l}.cross_attn.{msda}.{w}'),
    ('transformer.decoder.layers.{l}.attentions.1.value_proj_weight.weight',
     'query_decoder.layers.{l}.cross_attn.head_proj_weight'),
    ('transformer.decoder.layers.{l}.attentions.1.value_proj_bias.weight',
     'query_decoder.layers.{l}.cross_attn.head_proj_bias'),
    ('transformer.decoder.layers.{l}.ffns.0.layers.0.0.{w}', 'query_decoder.layers.{l}.ffn.0.{w}'),
    ('transformer.decoder.layers.{l}.ffns.0.layers.1.{w}', 'query_decoder.layers.{l}.ffn.3.{w}'),
    ('transformer.decoder.layers.{l}.norms.{i}.{w}', 'query_decoder.layers.{l}.norms.{i}.{w}'),
    ('fc_coord_branches.{l}.{i}.{w}', 'query_decoder.delta_branches.{l}.{i}.{w}'),
    ('fc_coord_output_branches.{l}.{i}.{w}', 'query_decoder.out_delta_branches.{l}.{i}.{w}'),
    ('fc_sigma_branches.{l}.{hidden}.{w}', 'query_decoder.sigma_branches.{l}.{hidden}.{w}'),
    ('fc_sigma_branches.{l}.2.linear.{w}', 'query_decoder.sigma_branches.{l}.2.{w}'),
    ('enc_flow.mask', 'coarse_loss.flow.mask'),
    ('enc_flow.{net}.{i}.{j}.{w}', 'coarse_loss.flow.{net}.{i}.{j}.{w}'),
    ('dec_flow.mask', 'decoder_loss.flow.mask'),
    ('dec_flow.{net}.{i}.{j}.{w}', 'decoder_loss.flow.{net}.{i}.{j}.{w}'),
]
FIELDS = dict(w='weight|bias', l=r'\d+', i=r'\d+', j=r'\d+', hidden='0|1', net='s|t',
              mha=r'in_proj_weight|in_proj_bias|out_proj\.weight|out_proj\.bias',
              msda='sampling_offsets|attention_weights|output_proj')


def _regex(template: str) -> re.Pattern:
    parts = re.split(r'\{(\w+)\}', template)
    return re.compile(''.join(
        re.escape(part) if i % 2 == 0 else f'(?P<{part}>{FIELDS[part]})'
        for i, part in enumerate(parts)))


def translate(name: str, to_poseur: bool) -> str:
    """One head name in the other format; exactly one row of HEAD_NAMES must match."""
    found = []
    for release, poseur in HEAD_NAMES:
        source, target = (release, poseur) if to_poseur else (poseur, release)
        match = _regex(source).fullmatch(name)
        if match:
            found.append(target.format(**match.groupdict()))
    assert len(found) == 1, (name, found)
    return found[0]


def expected_model_state(release: dict) -> dict:
    """What a model loaded from a release state dict must hold, by section 2 of the notes."""
    expected = {}
    for key, value in release.items():
        if key.startswith('keypoint_head.'):
            name = translate(key[len('keypoint_head.'):], to_poseur=True)
            if name.endswith('head_proj_weight'):  # row h*C + c: channel c of head h
                value = value.view(RELEASE_HEADS, -1, value.shape[1])
            key = 'head.' + name
        expected[key] = value
    for flow in ('coarse_loss', 'decoder_loss'):  # the release's prior N(0.5, I)
        expected[f'head.{flow}.flow.loc'] = torch.full((2, ), RELEASE_PRIOR_MEAN)
        expected[f'head.{flow}.flow.cov'] = torch.eye(2)
    return expected


def to_release(state_dict: dict) -> OrderedDict:
    """A poseur_mm detector's state dict in the release's names."""
    release = OrderedDict()
    for key, value in state_dict.items():
        if key.endswith(('flow.loc', 'flow.cov')):
            continue  # the release's priors are distributions, not state
        if key.startswith('head.'):
            name = translate(key[len('head.'):], to_poseur=False)
            if name.endswith('value_proj_weight.weight'):
                value = value.reshape(-1, value.shape[-1])  # (H, C, C/H) -> (H*C, C/H)
            key = 'keypoint_head.' + name
        release[key] = value.clone()
    return release


# ---- files as the release wrote them ----------------------------------------------------------

_NUMPY_SCALAR = np.float64(0).__reduce__()[0]


class _NumPy1Pickler(pickle._Pickler):
    """Names NumPy's scalar constructor as NumPy 1.x pickles did."""

    def save(self, obj, save_persistent_id=True):
        if obj is _NUMPY_SCALAR and id(obj) not in self.memo:
            self.write(pickle.GLOBAL + b'numpy.core.multiarray\nscalar\n')
            self.memoize(obj)
            return
        super().save(obj, save_persistent_id)


NUMPY1_PICKLE = types.ModuleType('numpy1_pickle')  # what torch.save takes as pickle_module
NUMPY1_PICKLE.Pickler = _NumPy1Pickler


def read_table(setting: str) -> list:
    """(key, shape, dtype) rows of a setting's release state dict."""
    table, joints, _ = SETTINGS[setting]
    with open(osp.join(TABLES, f'{table}.txt')) as f:
        lines = f.read().splitlines()
    rows = []
    for line in lines[1:]:
        if line.startswith('#'):
            continue
        key, shape, dtype = line.split('\t')
        shape = tuple(int(n) for n in shape.strip('()').split(',') if n.strip())
        if joints and key in K_SIZED:
            shape = (K_SIZED[key] * joints, ) + shape[1:]
        rows.append((key, shape, getattr(torch, dtype)))
    count = int(re.search(r'\((\d+) tensors', lines[1]).group(1))
    assert len(rows) == count
    return rows


def mmcv_metadata(keys) -> OrderedDict:
    """Module versions as mmcv 1.x's get_state_dict stores them: 1, BatchNorm 2."""
    modules = {''}
    for key in keys:
        parts = key.split('.')[:-1]
        modules.update('.'.join(parts[:n]) for n in range(1, len(parts) + 1))
    norms = {key.rsplit('.', 1)[0] for key in keys if key.endswith('running_mean')}
    return OrderedDict((m, dict(version=2 if m in norms else 1)) for m in sorted(modules))


def save_release(state_dict: OrderedDict, path: str) -> None:
    """Save as mmcv 1.x's EpochBasedRunner did for MMPose 0.28, NumPy 1.x names included."""
    state_dict._metadata = mmcv_metadata(state_dict)
    first = next(iter(state_dict.values()))
    checkpoint = dict(
        meta=dict(
            mmcv_version='1.6.0', time='Sat Jul 16 03:12:45 2022',
            mmpose_version='0.28.0' + 'eeebc65', config="model = dict(type='Poseur')\n",
            env_info='sys.platform: linux\nPython: 3.8.13\nPyTorch: 1.9.0', seed=1234,
            epoch=325, iter=162500,
            hook_msgs=dict(last_ckpt='work_dirs/epoch_325.pth', best_score=np.float64(0.755),
                           best_ckpt='work_dirs/best_AP_epoch_320.pth'),
            fp16=dict(loss_scaler=dict(scale=1024.0, growth_factor=2.0, backoff_factor=0.5,
                                       growth_interval=1000, _growth_tracker=812))),
        state_dict=state_dict,
        optimizer=dict(
            state={0: dict(step=162500, exp_avg=torch.zeros_like(first),
                           exp_avg_sq=torch.zeros_like(first))},
            param_groups=[dict(lr=1e-5, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-4,
                               amsgrad=False, params=[0])]))
    torch.save(checkpoint, path, pickle_module=NUMPY1_PICKLE)


def random_release_state(setting: str) -> OrderedDict:
    """Random tensors of exactly the table's keys, shapes and dtypes (the flows' masks as
    RealNVP's, positive running variances)."""
    generator = torch.Generator().manual_seed(len(setting))
    state = OrderedDict()
    for key, shape, dtype in read_table(setting):
        if dtype == torch.int64:
            value = torch.randint(0, 10**6, shape, generator=generator)
        elif key.endswith('flow.mask'):
            value = torch.tensor([[0., 1.], [1., 0.]] * 3)
        else:
            value = torch.randn(shape, generator=generator, dtype=dtype) * 0.05
            if key.endswith('running_var'):
                value = value.abs() + 0.5
        state[key] = value
    return state


@pytest.fixture(scope='module')
def release_file(tmp_path_factory):
    """``release_file(setting)``: a release-format file of the setting, written once and
    removed after the module (they are 100-250 MB)."""
    files = {}

    def make(setting: str) -> str:
        if setting not in files:
            files[setting] = str(tmp_path_factory.mktemp('release') / f'{setting}.pth')
            save_release(random_release_state(setting), files[setting])
        return files[setting]

    yield make
    for path in files.values():
        os.remove(path)


@pytest.fixture(scope='module')
def converter():
    """tools/model_converters/poseur_release_to_mmpose.py as a module."""
    spec = importlib.util.spec_from_file_location('poseur_release_to_mmpose', CONVERTER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def quiet():
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


# ---- every published setting ----------------------------------------------------------------

def test_wholebody_tables_differ_from_coco_only_in_k_sized_tensors():
    """The rule that derives the whole-body HRNet tables, checked on the ResNet-50 pair."""
    coco = {key: shape for key, shape, _ in read_table('res50')}
    wholebody = {key: shape for key, shape, _ in read_table('wholebody_res50')}
    assert coco.keys() == wholebody.keys()
    differ = {key for key in coco if coco[key] != wholebody[key]}
    assert differ == set(K_SIZED)
    for key, rows in K_SIZED.items():
        assert (coco[key][0], wholebody[key][0]) == (rows * 17, rows * 133)


@pytest.fixture(scope='module', params=[
    pytest.param(s, marks=[pytest.mark.slow] if s in SLOW_SETTINGS else []) for s in SETTINGS])
def loaded(request, tmp_path_factory, quiet):
    """A setting's release file through ``init_model`` with the setting's config, once."""
    setting = request.param
    state = random_release_state(setting)
    path = str(tmp_path_factory.mktemp(setting) / 'release.pth')
    save_release(state, path)
    report = io.StringIO()
    with contextlib.redirect_stdout(report):  # MMEngine prints key mismatches
        model = init_model(SETTINGS[setting][2], path, device='cpu')
    yield dict(setting=setting, path=path, state=state, model=model, report=report.getvalue())
    os.remove(path)


def test_release_file_names_the_numpy1_scalar(tmp_path):
    path = str(tmp_path / 'release.pth')
    state = OrderedDict(w=torch.zeros(1))
    save_release(state, path)
    saved = torch.serialization.get_safe_globals()
    torch.serialization.clear_safe_globals()
    try:
        named = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        assert 'numpy.core.multiarray.scalar' in named
        # poseur_mm's allow-list for MMEngine's checkpoints alone does not name it
        torch.serialization.add_safe_globals(MMENGINE_CHECKPOINT_GLOBALS)
        with pytest.raises(pickle.UnpicklingError, match='numpy.core.multiarray.scalar'):
            torch.load(path, weights_only=True)
    finally:
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(saved)
    checkpoint = torch.load(path, weights_only=True)
    assert checkpoint['meta']['hook_msgs']['best_score'] == np.float64(0.755)
    assert checkpoint['state_dict']._metadata[''] == dict(version=1)


def test_release_checkpoint_loads_strictly(loaded):
    assert 'do not match' not in loaded['report'], loaded['report']
    model = loaded['model']
    # MMEngine's loading path again, now strict: any missing or unexpected key raises
    checkpoint = _load_checkpoint(loaded['path'], map_location='cpu')
    _load_checkpoint_to_model(model, checkpoint, strict=True)
    expected = expected_model_state(loaded['state'])
    state = model.state_dict()
    assert state.keys() == expected.keys()
    for key, value in state.items():
        torch.testing.assert_close(value, expected[key], rtol=0, atol=0, msg=key)


def release_emsda(release: dict, layer: int, query, query_pos, memory, ref, shapes):
    """The release's EMSDA, written out slowly: every head samples its own copy of the
    memory at its points with grid_sample, sums with its weights, and projects the sum
    with its (C, C/8) slice of the (8C, C/8) table plus its bias row."""
    t = {key.split(f'layers.{layer}.attentions.1.')[1]: value for key, value in release.items()
         if f'decoder.layers.{layer}.attentions.1.' in key}
    batch, queries, channels = query.shape
    levels, points = len(shapes), t['attention_weights.weight'].shape[0] // RELEASE_HEADS // \
        len(shapes)
    q = query + query_pos
    offsets = F.linear(q, t['sampling_offsets.weight'], t['sampling_offsets.bias'])
    offsets = offsets.view(batch, queries, RELEASE_HEADS, levels, points, 2)
    weights = F.linear(q, t['attention_weights.weight'], t['attention_weights.bias'])
    weights = weights.view(batch, queries, RELEASE_HEADS, levels * points).softmax(-1)
    weights = weights.view(batch, queries, RELEASE_HEADS, levels, points)
    table = t['value_proj_weight.weight']
    heads = []
    for head in range(RELEASE_HEADS):
        summed = torch.zeros(batch, queries, channels)
        start = 0
        for level, (height, width) in enumerate(shapes):
            copy = memory[:, start:start + height * width].clone()
            copy = copy.transpose(1, 2).reshape(batch, channels, height, width)
            start += height * width
            loc = ref[:, :, None] + offsets[:, :, head, level] / torch.tensor([width, height])
            sampled = F.grid_sample(copy, 2 * loc - 1, mode='bilinear', padding_mode='zeros',
                                    align_corners=False)  # (B, C, Q, P)
            summed += (sampled * weights[:, None, :, head, level]).sum(-1).transpose(1, 2)
        projection = table[head * channels:(head + 1) * channels]  # (C, C/8)
        heads.append(summed @ projection + t['value_proj_bias.weight'][head])
    return F.linear(torch.cat(heads, -1), t['output_proj.weight'], t['output_proj.bias'])


def test_converted_per_head_projection_is_the_releases(loaded):
    model, release = loaded['model'], loaded['state']
    attention = model.head.query_decoder.layers[0].cross_attn.eval()
    stride = 4
    height, width = model.cfg.codec['input_size'][::-1]
    shapes = [(height // stride // 2**i, width // stride // 2**i) for i in range(4)]
    generator = torch.Generator().manual_seed(0)
    channels = attention.embed_dims
    tokens = sum(h * w for h, w in shapes)
    query, query_pos = torch.randn(2, 2, 17, channels, generator=generator)
    memory = torch.randn(2, tokens, channels, generator=generator)
    ref = torch.rand(2, 17, 2, generator=generator) * 0.8 + 0.1
    with torch.no_grad():
        ours = attention(query, query_pos, memory, ref, torch.tensor(shapes))
    expected = release_emsda(release, 0, query, query_pos, memory, ref, shapes)
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-5)


# ---- a small trained model in the release's format -------------------------------------------

@pytest.fixture(scope='module')
def tiny_release(checkpoint, tmp_path_factory) -> str:
    """The trained checkpoint of tests/data/poseur_tiny_inference.py in the release's format."""
    state = torch.load(checkpoint, map_location='cpu')['state_dict']
    path = str(tmp_path_factory.mktemp('tiny_release') / 'release.pth')
    save_release(to_release(state), path)
    return path


@pytest.fixture(scope='module')
def original(checkpoint, quiet):
    return init_model(TINY_CONFIG, checkpoint, device='cpu')


def whole_image_keypoints(model) -> np.ndarray:
    return inference_topdown(model, IMAGE)[0].pred_instances.keypoints


def assert_same_weights(model, reference) -> None:
    state = model.state_dict()
    assert state.keys() == reference.state_dict().keys()
    for key, value in reference.state_dict().items():
        torch.testing.assert_close(state[key], value, rtol=0, atol=0, msg=key)


def test_tiny_release_file_loads_as_the_original(tiny_release, original, capfd):
    model = init_model(TINY_CONFIG, tiny_release, device='cpu')
    assert 'do not match' not in capfd.readouterr().out
    assert_same_weights(model, original)
    np.testing.assert_array_equal(whole_image_keypoints(model), whole_image_keypoints(original))


def test_poseur_mm_state_dict_is_left_alone(checkpoint, original):
    state = torch.load(checkpoint, map_location='cpu')['state_dict']
    head_state = {key: value for key, value in state.items() if key.startswith('head.')}
    before = dict(head_state)
    original.head._load_state_dict_pre_hook(head_state, 'head.', {}, True, [], [], [])
    assert head_state.keys() == before.keys()
    assert all(head_state[key] is value for key, value in before.items())
    # and it still loads strictly, as before the hook existed
    _load_checkpoint_to_model(original, dict(state_dict=state), strict=True)


def test_inferencer_runs_the_release_file(tiny_release, original):
    inferencer = MMPoseInferencer(pose2d=TINY_CONFIG, pose2d_weights=tiny_release,
                                  det_model='whole_image', device='cpu')
    result = next(inferencer(IMAGE))
    keypoints = np.array(result['predictions'][0][0]['keypoints'])
    np.testing.assert_allclose(keypoints, whole_image_keypoints(original)[0], atol=1e-3)


def test_load_from_release_file_in_a_test_run(tiny_release, original, tmp_path, capfd):
    cfg = Config.fromfile(TINY_CONFIG)
    cfg.load_from, cfg.work_dir = tiny_release, str(tmp_path)
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    assert 'do not match' not in capfd.readouterr().out
    assert 0 <= metrics['coco/AP'] <= 1
    assert_same_weights(runner.model, original)


@pytest.mark.slow
def test_mim_test_loads_the_release_file(tiny_release, tmp_path):
    mim = osp.join(osp.dirname(sys.executable), 'mim')
    result = subprocess.run(
        [mim, 'test', 'mmpose', TINY_CONFIG, '-C', tiny_release, '--work-dir', str(tmp_path)],
        capture_output=True, text=True, timeout=1200, env=dict(os.environ,
                                                                PYTHONWARNINGS='ignore'))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert 'do not match' not in output
    assert re.search(r'coco/AP: [0-9.]+', output)


# ---- the converter ------------------------------------------------------------------------------

def run_converter(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, CONVERTER, *map(str, args)], capture_output=True,
                          text=True, timeout=1200, cwd=ROOT,
                          env=dict(os.environ, PYTHONWARNINGS='ignore'))


@pytest.mark.slow
def test_converter_output_predicts_as_the_release_file(tiny_release, original, tmp_path):
    out = tmp_path / 'converted.pth'
    result = run_converter(tiny_release, out, '--config', TINY_CONFIG, '--check', IMAGE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r'differ by at most 0\.00e\+00 px', result.stdout), result.stdout
    converted = torch.load(out, map_location='cpu', weights_only=True)
    assert converted.keys() == {'meta', 'state_dict'}  # no optimizer state
    assert converted['meta']['dataset_meta']['dataset_name'] == 'coco'
    assert converted['meta']['converted_from']['mmpose_version'] == '0.28.0eeebc65'
    assert 'keypoint_head.' not in ''.join(converted['state_dict'])
    model = init_model(TINY_CONFIG, str(out), device='cpu')
    assert_same_weights(model, original)
    release = init_model(TINY_CONFIG, tiny_release, device='cpu')
    np.testing.assert_array_equal(whole_image_keypoints(model), whole_image_keypoints(release))


def test_converter_without_config_writes_loadable_weights(converter, tiny_release, original,
                                                          tmp_path, capfd):
    out = tmp_path / 'converted.pth'
    converter.main([tiny_release, str(out)])
    assert torch.load(out, map_location='cpu', weights_only=True)['meta'].keys() == {
        'converted_from'}
    model = init_model(TINY_CONFIG, str(out), device='cpu')
    assert 'do not match' not in capfd.readouterr().out
    assert_same_weights(model, original)


def test_converter_refuses_a_truncated_file(tiny_release, tmp_path):
    with open(tiny_release, 'rb') as f:
        data = f.read()
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(data[:len(data) // 2])
    out = tmp_path / 'out' / 'converted.pth'
    out.parent.mkdir()
    result = run_converter(truncated, out, '--config', TINY_CONFIG)
    assert result.returncode == 1
    assert 'not a complete PyTorch checkpoint' in result.stderr
    assert 'download it again' in result.stderr
    assert os.listdir(out.parent) == []


class _RunsShellCommand:

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command, )


def test_converter_refuses_a_malicious_pickle(converter, tmp_path):
    marker = tmp_path / 'payload_ran'
    path = tmp_path / 'malicious.pth'
    torch.save(dict(state_dict=OrderedDict(), meta=_RunsShellCommand(f'touch {marker}')), path)
    out = tmp_path / 'converted.pth'
    with pytest.raises(ValueError, match='refused by torch.load.*system'):
        converter.convert(str(path), str(out))
    assert not marker.exists() and not out.exists()


def test_converter_refuses_a_poseur_mm_checkpoint(converter, checkpoint, tmp_path):
    out = tmp_path / 'converted.pth'
    with pytest.raises(ValueError, match='not a checkpoint of the Poseur release.*needs no '
                       'conversion'):
        converter.convert(checkpoint, str(out))
    assert not out.exists()


@pytest.mark.parametrize('setting, config, message', [
    pytest.param('mobilenetv2_dec12', 'mobilenetv2',
                 r'12 decoder layers .*layers\.0-11\), .* builds 6: .*num_layers=12',
                 id='12-decoder-layers-into-6'),
    pytest.param('wholebody_res50', 'res50',
                 r'133 keypoints \(keypoint_head\.transformer\.pos_embed\.weight \(133, 256\)'
                 r'\), .* has 17: .*num_joints=133', id='133-keypoints-into-17'),
    pytest.param('mobilenetv2', 'res50',
                 r'backbone \(MobileNetV2\) does not fit .* \(ResNet\): .*backbone\.',
                 id='mobilenetv2-into-res50'),
])
def test_converter_names_a_setting_mismatch(converter, setting, config, message, release_file,
                                            tmp_path, quiet):
    out = tmp_path / 'converted.pth'
    with pytest.raises(ValueError, match=message):
        converter.convert(release_file(setting), str(out), SETTINGS[config][2])
    assert os.listdir(tmp_path) == []
