"""PoseurLocalVisualizer: each predicted keypoint's Laplace interval drawn as an ellipse."""
import math

import numpy as np
import pytest
from mmengine.structures import InstanceData
from mmpose.visualization import PoseLocalVisualizer

from poseur_mm.visualization import PoseurLocalVisualizer

META = dict(num_keypoints=1, keypoint_colors=np.array([[255, 0, 0]], dtype=np.uint8),
            skeleton_links=[], skeleton_link_colors=np.zeros((0, 3), dtype=np.uint8))


def _draw(visualizer, **fields):
    visualizer.set_dataset_meta(META)
    instances = InstanceData(keypoints=np.array([[[50., 50.]]]),
                             keypoints_visible=np.ones((1, 1)), **fields)
    return visualizer._draw_instances_kpts(np.zeros((100, 100, 3), np.uint8), instances, 0.3)


def test_one_sigma_ellipse_has_the_sigmas_as_semi_axes():
    image = _draw(PoseurLocalVisualizer(name='ellipse_1sigma', radius=1),
                  keypoint_sigmas=np.array([[[20., 10.]]]))
    red = image[..., 0] > 100
    assert red[50, 70] and red[50, 30] and red[60, 50] and red[40, 50]  # on the ellipse
    assert not red[50, 75] and not red[65, 50] and not red[50, 62]  # outside and inside


def test_chosen_coverage_scales_the_ellipse():
    """90 % per axis: semi-axes -b ln(0.1) = 2.30 b."""
    image = _draw(PoseurLocalVisualizer(name='ellipse_90', sigma_coverage=0.9, radius=1),
                  keypoint_sigmas=np.array([[[10., 10.]]]))
    radius = round(-10 * math.log(0.1))  # 23 px
    red = image[..., 0] > 100
    assert red[50, 50 + radius] and red[50 - radius, 50]
    assert not red[50, 50 + radius + 4] and not red[50, 50 + 10]


def test_without_sigmas_it_draws_as_mmpose_does():
    ours = _draw(PoseurLocalVisualizer(name='ellipse_none', radius=3))
    mmpose = _draw(PoseLocalVisualizer(name='plain_none', radius=3))
    np.testing.assert_array_equal(ours, mmpose)


def test_coverage_must_be_a_probability():
    with pytest.raises(ValueError, match='sigma_coverage'):
        PoseurLocalVisualizer(name='ellipse_bad', sigma_coverage=1.0)
