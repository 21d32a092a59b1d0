"""Every shipped config resolves to the settings recorded in tests/data/resolved_configs.

The reference files hold what each config resolved to (MMEngine's inheritance and variable
substitution applied) before the configs shared configs/_base_/poseur.py. A change to a config
or to a base it inherits shows here as a failing test naming the config and the first differing
key. The intended changes since the recording are named in ``MOVED``, ``ADDED`` and
``SCOPE_MARKERS_MOVED``; the
fragment's ``poseur_*`` variables are inputs of the settings, not settings, and are left out.

Run ``python tests/test_resolved_configs.py`` to record the files anew after an intended change
(the three then go empty).
"""
import glob
import json
import os.path as osp
import sys

import pytest
from mmengine.config import Config

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))
DUMPS = osp.join(ROOT, 'tests', 'data', 'resolved_configs')
FRAGMENT = osp.join(ROOT, 'configs', '_base_', 'poseur.py')
CONFIGS = sorted(
    [p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
     if '_base_' not in p]
    + glob.glob(osp.join(ROOT, 'projects', '*', 'configs', '*.py')) +
    glob.glob(osp.join(ROOT, 'tests', 'data', '*.py')))
CHECKOUT = '{repo}'  # stands for the checkout's absolute path in the recorded files
# intended changes: recorded value -> value now
MOVED = {
    # the MMPose test images moved from a folder beside the checkout into tests/data
    f'{CHECKOUT}/tests/data/../../../shared/data/mmpose_testdata/': f'{CHECKOUT}/tests/data/',
}
# intended changes: config -> {key path: value it gained}
ADDED = {
    # the tiny MPII config inherits the tiny COCO one, with its ground-truth boxes in validation
    # (bbox_file=None, MpiiDataset's default as well)
    'tests/data/td-reg_res18_poseur-1xb2-2e_mpii-128x128.py': {
        'val_dataloader.dataset.bbox_file': None,
        'test_dataloader.dataset.bbox_file': None,
    },
}
# intended changes: configs whose `_scope_` markers moved. MMEngine marks what a config reads
# from an `mmpose::` base with `_scope_='mmpose'`, the default_scope of every config here, so a
# marker selects no other registry; the comparison drops the markers naming the default scope
SCOPE_MARKERS_MOVED = {
    # the HRNet RLE baselines derive from the ResNet-50 RLE baseline instead of the heatmap ones
    'configs/body_2d_keypoint/baselines/coco/td-reg_hrnet-w32_rle-8xb32-325e_coco-256x192.py',
    'configs/body_2d_keypoint/baselines/coco/td-reg_hrnet-w48_rle-8xb32-325e_coco-384x288.py',
}


def _config_id(path: str) -> str:
    return osp.relpath(path, ROOT)


def _dump_path(path: str) -> str:
    return osp.join(DUMPS, osp.splitext(_config_id(path))[0] + '.json')


def resolve(path: str) -> dict:
    """A config's resolved settings as plain JSON values, with the checkout path replaced.

    Args:
        path (str): the config file.

    Returns:
        dict: the resolved config without the fragment's variables; tuples become lists, and
        every string naming a path inside the checkout (``{{ fileDirname }}``) starts with
        ``{repo}`` instead.
    """
    cfg = Config.fromfile(path).to_dict()
    for name in Config.fromfile(FRAGMENT):
        cfg.pop(name, None)
    text = json.dumps(cfg, sort_keys=True)
    return json.loads(text.replace(json.dumps(ROOT)[1:-1], CHECKOUT))


def _first_difference(actual, expected, where='cfg'):
    """The first key path at which two resolved configs differ, or None."""
    if isinstance(actual, dict) and isinstance(expected, dict):
        for key in sorted(set(actual) | set(expected)):
            if key not in actual or key not in expected:
                return f'{where}.{key}: only in the {"dump" if key in expected else "config"}'
            found = _first_difference(actual[key], expected[key], f'{where}.{key}')
            if found:
                return found
        return None
    if isinstance(actual, list) and isinstance(expected, list) and len(actual) == len(expected):
        for i, (a, e) in enumerate(zip(actual, expected)):
            found = _first_difference(a, e, f'{where}[{i}]')
            if found:
                return found
        return None
    return None if actual == expected else f'{where}: {actual!r} != recorded {expected!r}'


def _expected(path: str) -> dict:
    """The recorded settings of a config with the intended changes applied."""
    with open(_dump_path(path)) as f:
        text = f.read()
    for recorded, now in MOVED.items():
        text = text.replace(recorded, now)
    expected = json.loads(text)
    for key_path, value in ADDED.get(_config_id(path), {}).items():
        *parents, key = key_path.split('.')
        node = expected
        for parent in parents:
            node = node[parent]
        assert key not in node, f'{key_path} was recorded already'
        node[key] = value
    return expected


def _without_scope(node, scope: str):
    """A resolved config without the ``_scope_`` markers that name ``scope``."""
    if isinstance(node, dict):
        return {
            k: _without_scope(v, scope)
            for k, v in node.items() if not (k == '_scope_' and v == scope)
        }
    if isinstance(node, list):
        return [_without_scope(v, scope) for v in node]
    return node


@pytest.mark.parametrize('path', CONFIGS, ids=_config_id)
def test_config_resolves_as_recorded(path):
    actual, expected = resolve(path), _expected(path)
    if _config_id(path) in SCOPE_MARKERS_MOVED:
        assert actual['default_scope'] == expected['default_scope'] == 'mmpose'
        actual, expected = _without_scope(actual, 'mmpose'), _without_scope(expected, 'mmpose')
    difference = _first_difference(actual, expected)
    assert difference is None, difference


def test_every_dump_has_its_config():
    dumps = glob.glob(osp.join(DUMPS, '**', '*.json'), recursive=True)
    assert sorted(dumps) == sorted(_dump_path(path) for path in CONFIGS)


def _record(paths):
    import os
    for path in paths:
        out = _dump_path(path)
        os.makedirs(osp.dirname(out), exist_ok=True)
        with open(out, 'w') as f:
            json.dump(resolve(path), f, indent=1, sort_keys=True)
            f.write('\n')
        print(out)


if __name__ == '__main__':
    sys.path.insert(0, ROOT)
    _record(CONFIGS)
