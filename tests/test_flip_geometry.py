"""Pins MMPose's horizontal-flip geometry with its own transforms on real COCO people.

Training flips the image with the pixel-centre convention (x' = w - 1 - x) and the bbox centre
the same way, then TopdownAffine maps the centre to (W/2, H/2). The resulting crop is the
mirror of the plain crop about x = W/2, i.e. ``flipped[j] = plain[W - j]``, while a test-time
``inputs.flip(-1)`` mirrors about (W - 1)/2: ``plain[W - 1 - j]``. These tests check both
claims numerically, independent of poseur_mm's code, since the flip-test convention
(``flip_coordinates(shift_coords=...)``) depends on them. With UDP (``use_udp=True``) the crop
is centred at (W - 1)/2 instead, and the training flip is exactly the tensor flip.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.dataset import Compose
from mmpose.datasets import CocoDataset
from mmpose.datasets.transforms import (GetBBoxCenterScale, LoadImage, RandomFlip,
                                        TopdownAffine)
from mmpose.models.utils.tta import flip_coordinates

from tiny_model import COCO_ROOT

INPUT_SIZE = (96, 128)  # (w, h)
PEOPLE = (0, 1, 4, 7)  # people from all four images, large and small boxes


def _crops(index: int, use_udp: bool = False):
    """Plain and training-flipped crop of one person, through MMPose's transforms."""
    dataset = CocoDataset(data_root=COCO_ROOT, ann_file='test_coco.json', data_mode='topdown',
                          data_prefix=dict(img=''), pipeline=[])
    info = dataset.get_data_info(index)
    head = [LoadImage(), GetBBoxCenterScale()]
    affine = [TopdownAffine(input_size=INPUT_SIZE, use_udp=use_udp)]
    plain = Compose(head + affine)(dict(info))
    flipped = Compose(head + [RandomFlip(prob=1.0, direction='horizontal')] + affine)(dict(info))
    assert flipped['flip'] and not plain.get('flip', False)
    return plain, flipped


@pytest.fixture(scope='module', params=PEOPLE)
def crops(request):
    return _crops(request.param)


def _column_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


def test_training_flip_is_the_plain_crop_mirrored_about_half_the_width(crops):
    plain, flipped = crops
    img, img_flip = plain['img'], flipped['img']  # (H, W, 3) uint8
    width = INPUT_SIZE[0]
    cols = np.arange(1, width)  # column W - j exists only for j >= 1
    shift1 = _column_diff(img_flip[:, cols], img[:, width - cols])
    shift0 = _column_diff(img_flip[:, cols], img[:, width - 1 - cols])
    # cv2 quantises sample positions to 1/32 px, so mirrored samples may differ by a few levels
    assert shift1 < 0.1, f'flipped[j] != plain[W - j]: mean |diff| {shift1:.2f}'
    assert shift0 > 2.0, (
        f'a tensor flip should not match the training flip: {shift0:.2f} vs {shift1:.2f}')


def test_tensor_flip_shifted_right_by_one_pixel_is_the_training_flip(crops):
    plain, flipped = crops
    # (H, W, 3) -> (3, H, W)
    plain_t = torch.from_numpy(plain['img']).permute(2, 0, 1).float()
    flipped_t = torch.from_numpy(flipped['img']).permute(2, 0, 1).float()
    consistent = F.pad(plain_t.flip(-1)[..., :-1], (1, 0))
    tensor_flip = plain_t.flip(-1)
    # column 0 comes from outside the plain crop: only the training warp knows it
    assert (consistent[..., 1:] - flipped_t[..., 1:]).abs().mean() < 1.0
    assert (tensor_flip[..., 1:] - flipped_t[..., 1:]).abs().mean() > 5 * max(
        float((consistent[..., 1:] - flipped_t[..., 1:]).abs().mean()), 0.2)


def test_flipped_labels_land_at_width_minus_x(crops):
    plain, flipped = crops
    kpts = plain['transformed_keypoints'][0]  # (K, 2) crop px
    kpts_flip = flipped['transformed_keypoints'][0]
    flip_indices = plain['flip_indices']
    width = INPUT_SIZE[0]
    # keypoint k of the plain crop is keypoint flip_indices[k] of the flipped one
    np.testing.assert_allclose(kpts_flip[flip_indices, 0], width - kpts[:, 0], atol=1e-3)
    np.testing.assert_allclose(kpts_flip[flip_indices, 1], kpts[:, 1], atol=1e-3)
    np.testing.assert_array_equal(flipped['keypoints_visible'][0][flip_indices],
                                  plain['keypoints_visible'][0])


def test_flip_coordinates_inverts_each_flipped_input(crops):
    """A prediction equal to the content position in each flipped input comes back to the
    plain label: shift_coords=True for a tensor flip (content at W - 1 - x), False for the
    training flip (content at W - x)."""
    plain, flipped = crops
    width, height = INPUT_SIZE
    scale = torch.tensor([width, height], dtype=torch.float64)
    kpts = torch.from_numpy(plain['transformed_keypoints'][0]).double()  # (K, 2)
    flip_indices = plain['flip_indices']
    target = kpts / scale

    # in a tensor-flipped crop, plain keypoint k sits at column W - 1 - x as keypoint
    # flip_indices[k]
    tensor_flip = torch.empty_like(kpts)
    tensor_flip[flip_indices] = torch.stack((width - 1 - kpts[:, 0], kpts[:, 1]), dim=-1)
    back = flip_coordinates((tensor_flip / scale)[None].clone(), flip_indices,
                            shift_coords=True, input_size=INPUT_SIZE)[0]
    torch.testing.assert_close(back, target)

    training_flip = torch.from_numpy(flipped['transformed_keypoints'][0]).double()
    back = flip_coordinates((training_flip / scale)[None].clone(), flip_indices,
                            shift_coords=False, input_size=INPUT_SIZE)[0]
    torch.testing.assert_close(back, target, atol=1e-5, rtol=0)
    wrong = flip_coordinates((training_flip / scale)[None].clone(), flip_indices,
                             shift_coords=True, input_size=INPUT_SIZE)[0]
    torch.testing.assert_close(wrong[:, 0], target[:, 0] - 1 / width, atol=1e-5, rtol=0)


@pytest.mark.parametrize('index', PEOPLE[:2])
def test_with_udp_the_training_flip_is_the_tensor_flip(index):
    plain, flipped = _crops(index, use_udp=True)
    img, img_flip = plain['img'], flipped['img']
    width = INPUT_SIZE[0]
    cols = np.arange(1, width)
    assert _column_diff(img_flip, img[:, ::-1]) < 0.1
    assert _column_diff(img_flip[:, cols], img[:, width - cols]) > 2.0
    kpts = plain['transformed_keypoints'][0]
    kpts_flip = flipped['transformed_keypoints'][0]
    np.testing.assert_allclose(kpts_flip[plain['flip_indices'], 0], width - 1 - kpts[:, 0],
                               atol=1e-3)
