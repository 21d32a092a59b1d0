"""The head-swap recipe (projects/head_swap) and its neck helper (config_utils.py there).

A swap config must change only the model and the training targets of the MMPose config it
inherits, and must start the backbone from that model's trained weights. Building and
training every swap config is covered by test_configs.py.
"""
import ast
import copy
import glob
import os.path as osp

import mmpose
import pytest
import torch
import yaml
from mmengine.config import Config
from mmpose.registry import MODELS
from mmpose.utils import register_all_modules

import poseur_mm  # noqa: F401
from projects.head_swap.config_utils import backbone_out_channels, channel_mapper

ROOT = osp.join(osp.dirname(__file__), '..')
MMPOSE_CONFIGS = osp.join(osp.dirname(mmpose.__file__), '.mim', 'configs')
SWAP_CONFIGS = sorted(glob.glob(osp.join(ROOT, 'projects', 'head_swap', 'configs', '*.py')))
ALL_CONFIGS = sorted(  # configs/_base_ holds fragments, not configs
    [p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
     if '_base_' not in p] + glob.glob(osp.join(ROOT, 'projects', '*', 'configs', '*.py')))
# top-level keys a swap may change; every other key must equal the source config's
SWAPPED_KEYS = {
    'model', 'codec', 'custom_imports', 'train_pipeline', 'train_pipeline_stage2',
    'train_dataloader', 'custom_hooks', 'optim_wrapper', 'val_evaluator', 'test_evaluator'
}
register_all_modules()


pytestmark = pytest.mark.usefixtures('quiet_single_thread')


def _unscoped(node):
    """Drop the ``_scope_`` keys MMEngine adds to what a config inherits via ``mmpose::``."""
    if isinstance(node, dict):
        return {k: _unscoped(v) for k, v in node.items() if k != '_scope_'}
    if isinstance(node, (list, tuple)):
        return type(node)(_unscoped(v) for v in node)
    return node


def _source_config(swap_path: str) -> str:
    """Path (inside MMPose's packaged configs) of the config a swap config inherits."""
    with open(swap_path) as f:
        tree = ast.parse(f.read())
    base = next(
        node.value for node in tree.body if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name) and node.targets[0].id == '_base_')
    # one MMPose config, beside configs/_base_/poseur.py
    (scoped, ) = [path for path in ast.literal_eval(base) if path.startswith('mmpose::')]
    return scoped[len('mmpose::'):]


def _model_zoo_weights(source: str) -> str:
    """The trained checkpoint MMPose's model-zoo metafile lists for a config."""
    for metafile in glob.glob(osp.join(MMPOSE_CONFIGS, osp.dirname(source), '*.yml')):
        with open(metafile) as f:
            models = yaml.safe_load(f)['Models']
        for model in models:
            if model['Config'] == f'configs/{source}':
                return model['Weights']
    raise AssertionError(f'{source} has no entry in its model-zoo metafile')


def _without_init(model: dict) -> dict:
    model = copy.deepcopy(model)
    model.backbone.pop('init_cfg', None)
    return model


def _regression_targets(pipeline: list, codec: dict) -> list:
    return [dict(t, encoder=codec) if t['type'] == 'GenerateTarget' else t for t in pipeline]


@pytest.mark.parametrize('swap_path', SWAP_CONFIGS, ids=osp.basename)
def test_swap_changes_only_model_and_targets(swap_path):
    swap = _unscoped(Config.fromfile(swap_path).to_dict())
    source = _unscoped(
        Config.fromfile(osp.join(MMPOSE_CONFIGS, _source_config(swap_path))).to_dict())

    assert set(swap) >= set(source)
    for key in set(source) - SWAPPED_KEYS:
        assert swap[key] == source[key], key

    codec = dict(type='RegressionLabel', input_size=source['codec']['input_size'])
    assert swap['codec'] == codec
    model, source_model = swap['model'], source['model']
    assert model['head']['type'] == 'PoseurHead'
    assert model['head']['decoder'] == codec
    assert model['data_preprocessor'] == source_model['data_preprocessor']
    backbone = {k: v for k, v in model['backbone'].items() if k not in ('out_indices', 'init_cfg')}
    assert backbone == {
        k: v
        for k, v in source_model['backbone'].items() if k not in ('out_indices', 'init_cfg')
    }
    assert len(model['backbone']['out_indices']) == model['head'].get('num_feature_levels', 4)

    # the same data, only with regression targets (in every training stage)
    expected = source['train_dataloader']
    expected['dataset']['pipeline'] = _regression_targets(expected['dataset']['pipeline'], codec)
    assert swap['train_dataloader'] == expected
    for hook, source_hook in zip(swap['custom_hooks'], source['custom_hooks']):
        if 'switch_pipeline' in source_hook:
            source_hook['switch_pipeline'] = _regression_targets(source_hook['switch_pipeline'],
                                                                 codec)
        assert hook == source_hook
    # plus the check of neck and dataset against the new head
    assert swap['custom_hooks'][len(source['custom_hooks']):] == [
        dict(type='PoseurCheckHook'), dict(type='NonFiniteLossHook')]

    # the same optimizer, with the offsets' lr multiplier; rescoring with keypoint scores
    assert swap['optim_wrapper']['optimizer'] == source['optim_wrapper']['optimizer']
    assert swap['optim_wrapper']['paramwise_cfg']['custom_keys'] == {
        'sampling_offsets': dict(lr_mult=0.1)
    }
    for key in ('val_evaluator', 'test_evaluator'):
        assert swap[key] == dict(source[key], score_mode='bbox_rle')


@pytest.mark.parametrize('swap_path', SWAP_CONFIGS, ids=osp.basename)
def test_swap_backbone_starts_from_the_source_model(swap_path, tmp_path):
    torch.manual_seed(0)
    source_path = _source_config(swap_path)
    swap = Config.fromfile(swap_path)
    init_cfg = swap.model.backbone.init_cfg
    assert init_cfg.type == 'Pretrained' and init_cfg.prefix == 'backbone.'
    assert init_cfg.checkpoint == _model_zoo_weights(source_path)

    # a trained source model stands in for the download: its backbone must come through
    source = Config.fromfile(osp.join(MMPOSE_CONFIGS, source_path))
    source_model = MODELS.build(_without_init(source.model))
    checkpoint = str(tmp_path / 'source.pth')
    torch.save(dict(state_dict=source_model.state_dict()), checkpoint)
    init_cfg.checkpoint = checkpoint
    model = MODELS.build(swap.model)
    source_backbone = source_model.backbone.state_dict()
    assert any(not torch.equal(v, source_backbone[k])
               for k, v in model.backbone.state_dict().items() if v.is_floating_point())
    model.init_weights()
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(value, source_backbone[key]), key
    assert model.backbone.state_dict().keys() == source_backbone.keys()


def test_backbone_out_channels_reads_each_stage():
    # bottleneck ResNets: 64 * expansion 4 * 2^stage; basic blocks: 64 * 2^stage
    resnet50 = dict(type='ResNet', depth=50, out_indices=(0, 1, 2, 3))
    assert backbone_out_channels(resnet50) == [256, 512, 1024, 2048]
    assert backbone_out_channels(dict(type='ResNet', depth=18, out_indices=(1, 3))) == [128, 512]
    assert backbone_out_channels(dict(type='ResNet', depth=50)) == [2048]  # default: last
    # MobileNetV2 stages 1, 2, 4 and the final 1x1 conv (Poseur's published neck inputs)
    mobilenet = dict(type='MobileNetV2', out_indices=(1, 2, 4, 7))
    assert backbone_out_channels(mobilenet) == [24, 32, 96, 1280]
    # init_cfg is ignored (no download) and the input config is left untouched
    pretrained = dict(resnet50, init_cfg=dict(type='Pretrained', checkpoint='no/such/file'))
    assert backbone_out_channels(pretrained) == [256, 512, 1024, 2048]
    assert 'init_cfg' in pretrained


def test_channel_mapper_matches_the_shipped_necks():
    probed = {}
    for path in ALL_CONFIGS:
        model = Config.fromfile(path).model
        neck = model.get('neck')
        if not neck or neck.type != 'ChannelMapper':
            continue
        key = repr({k: v for k, v in model.backbone.items() if k != 'init_cfg'})
        if key not in probed:
            probed[key] = channel_mapper(model.backbone, neck.out_channels)
        assert neck.in_channels == probed[key]['in_channels'], path
        if path in SWAP_CONFIGS or path.startswith(osp.join(ROOT, 'configs')):
            assert neck.to_dict() == probed[key], path
    assert len(probed) >= 5  # ResNet-50, MobileNetV2, HRNet-W32/W48, CSPNeXt-m at least
