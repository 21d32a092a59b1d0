"""MMPose's pose visualiser, drawing each keypoint's Laplace uncertainty as an ellipse."""
import math

import cv2
import numpy as np
from mmengine.structures import InstanceData
from mmpose.registry import VISUALIZERS
from mmpose.visualization import PoseLocalVisualizer

@VISUALIZERS.register_module()
class PoseurLocalVisualizer(PoseLocalVisualizer):
    """:class:`PoseLocalVisualizer` that also draws, around every predicted keypoint it
    shows, the axis-aligned ellipse whose semi-axes are the central ``sigma_coverage``
    interval of its Laplace distribution on each axis: ``-b ln(1 - c)`` for the scale b of
    ``pred_instances.keypoint_sigmas`` (image pixels, see :meth:`PoseurHead.predict`).
    Instances without sigmas (ground truth, other heads) are drawn as MMPose draws them.

    Use it as the config's visualiser, e.g.
    ``visualizer = dict(type='PoseurLocalVisualizer', vis_backends=[...], name='visualizer')``.

    Args:
        name (str): the instance name (MMEngine keeps one visualiser per name).
            Defaults to ``'visualizer'``.
        sigma_coverage (float): per-axis probability c of the drawn interval, in (0, 1).
            Defaults to 1 - 1/e (0.632), the 1-sigma ellipse (semi-axes b).
        **kwargs: the other arguments of :class:`PoseLocalVisualizer`.
    """

    def __init__(self, name: str = 'visualizer', sigma_coverage: float = 1 - math.exp(-1),
                 **kwargs):
        super().__init__(name=name, **kwargs)
        if not 0 < sigma_coverage < 1:
            raise ValueError(f'sigma_coverage is a probability in (0, 1), got {sigma_coverage}')
        self.sigma_coverage = sigma_coverage

    def _draw_instances_kpts(self, image: np.ndarray, instances: InstanceData,
                             kpt_thr: float = 0.3, show_kpt_idx: bool = False,
                             skeleton_style: str = 'mmpose') -> np.ndarray:
        """MMPose's keypoints and skeleton, then the ellipses of the keypoints it drew."""
        image = super()._draw_instances_kpts(image, instances, kpt_thr, show_kpt_idx,
                                             skeleton_style)
        if 'keypoint_sigmas' not in instances:
            return image
        image = image.copy()
        height, width = image.shape[:2]
        visible = instances.get('keypoints_visible',
                                np.ones(instances.keypoints.shape[:-1]))
        colors = self.kpt_color if self.kpt_color is not None else [(255, 0, 0)]
        half_widths = -np.asarray(instances.keypoint_sigmas) * math.log1p(-self.sigma_coverage)
        for keypoints, shown, axes in zip(instances.keypoints, visible, half_widths):
            for k, (centre, score, axis) in enumerate(zip(keypoints, shown, axes)):
                if score < kpt_thr or not (0 <= centre[0] < width and 0 <= centre[1] < height):
                    continue
                color = tuple(int(c) for c in colors[k % len(colors)])
                cv2.ellipse(image, tuple(int(round(c)) for c in centre),
                            tuple(max(1, int(round(a))) for a in axis), 0, 0, 360, color, 1,
                            cv2.LINE_AA)
        return image
