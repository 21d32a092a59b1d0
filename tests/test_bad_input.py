"""Bad input: clear errors at the right place, finite numbers where data is degenerate."""
import numpy as np
import pytest
import torch

from tiny_model import coco_batch as _batch
from tiny_model import tiny_model as _model


def test_num_joints_not_matching_the_dataset_names_the_fix():
    model = _model(num_joints=16)
    data = model.data_preprocessor(_batch(), training=True)
    with pytest.raises(ValueError, match='dataset has 17 keypoints.*num_joints=16'):
        model.loss(**data)


def test_no_visible_keypoint_gives_finite_loss_and_gradients():
    def hide_all(info):
        info['keypoints_visible'] = np.zeros_like(info['keypoints_visible'])

    model = _model()
    data = model.data_preprocessor(_batch(edit=hide_all), training=True)
    assert float(data['data_samples'][0].gt_instance_labels.keypoint_weights.sum()) == 0
    losses = model.loss(**data)
    total = sum(v for k, v in losses.items() if k.startswith('loss'))
    assert torch.isfinite(total)
    assert float(total) == 0.0  # every term is weighted by visibility
    total.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert all(torch.isfinite(g).all() for g in grads)


def test_zero_area_boxes_do_not_crash_prediction():
    def collapse(info):
        x, y = info['bbox'][0, :2]
        info['bbox'] = np.array([[x, y, x, y]], dtype=np.float32)

    model = _model().eval()
    data = model.data_preprocessor(_batch(train=False, edit=collapse), training=False)
    with torch.no_grad():
        results = model.predict(**data)
    assert len(results) == 2
    for result in results:
        keypoints = result.pred_instances.keypoints
        assert keypoints.shape == (1, 17, 2)
        assert np.isfinite(keypoints).all()
        assert np.isfinite(result.pred_instances.keypoint_scores).all()


def test_flip_test_without_flip_indices_names_the_fix():
    model = _model().eval()
    data = model.data_preprocessor(_batch(train=False), training=False)
    for sample in data['data_samples']:
        sample.set_metainfo(dict(flip_indices=None))
    with pytest.raises(ValueError, match='flip_indices.*flip_test=False'):
        with torch.no_grad():
            model.predict(**data)


def test_flip_test_with_a_plain_feature_tuple_names_the_expected_input():
    model = _model().eval()
    data = model.data_preprocessor(_batch(train=False), training=False)
    with torch.no_grad():
        feats = model.extract_feat(data['inputs'])  # one pass, not (plain, flipped)
        with pytest.raises(ValueError, match=r'\[feats, feats_flip\].*flip_test=False'):
            model.head.predict(feats, data['data_samples'], test_cfg=dict(flip_test=True))


def test_nan_crop_warns_naming_its_sample():
    model = _model().eval()
    data = model.data_preprocessor(_batch(train=False), training=False)
    data['inputs'][1, :, :4, :4] = float('nan')  # a few NaN pixels in the second crop
    name = data['data_samples'][1].metainfo['img_path']
    with torch.no_grad(), pytest.warns(UserWarning, match='non-finite') as caught:
        results = model.predict(**data)
    messages = [str(w.message) for w in caught if 'non-finite' in str(w.message)]
    assert len(messages) == 1 and name in messages[0]  # the NaN sample, and only it
    assert not np.isfinite(results[1].pred_instances.keypoints).all()
    assert np.isfinite(results[0].pred_instances.keypoints).all()
