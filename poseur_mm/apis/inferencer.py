"""MMPose's 2D pose inferencer, with each keypoint's Laplace scale in its predictions."""
import os.path as osp
from typing import List

import mmengine
import numpy as np
from mmpose.apis.inferencers import Pose2DInferencer
from mmpose.registry import INFERENCERS
from mmpose.structures import PoseDataSample


@INFERENCERS.register_module()
class PoseurInferencer(Pose2DInferencer):
    """:class:`mmpose.apis.inferencers.Pose2DInferencer` whose predictions also carry
    ``keypoint_sigmas``: per instance a K x 2 list, each keypoint's Laplace scale per axis
    in image pixels (see :meth:`PoseurHead.predict`).

    MMPose 1.3.2 turns predictions into JSON with ``split_instances``, which keeps only
    keypoints, scores and boxes; this class adds the sigmas to the returned predictions
    and to the files written to ``pred_out_dir`` (one ``<image name>.json`` per image, or
    the video's file), without changing MMPose's functions. Arguments are
    ``Pose2DInferencer``'s, e.g. ``PoseurInferencer(model=CONFIG, weights=CKPT,
    det_model='whole_image')``.
    """

    def postprocess(self,
                    preds: List[PoseDataSample],
                    visualization: List[np.ndarray],
                    return_datasample=None,
                    return_datasamples: bool = False,
                    pred_out_dir: str = '') -> dict:
        """MMPose's ``postprocess``, with ``keypoint_sigmas`` added to every instance's
        dict before the predictions are returned and written."""
        if return_datasample or return_datasamples:  # the samples hold the sigmas already
            return super().postprocess(preds, visualization, return_datasample,
                                       return_datasamples, pred_out_dir)
        result = super().postprocess(preds, visualization, pred_out_dir='')
        for instances, sample in zip(result['predictions'], preds):
            for instance, sigmas in zip(instances, sample.pred_instances.keypoint_sigmas):
                instance['keypoint_sigmas'] = sigmas.tolist()
        if pred_out_dir:
            self._write(result['predictions'], preds, pred_out_dir)
        return result

    def _write(self, predictions: list, preds: List[PoseDataSample], pred_out_dir: str) -> None:
        """Where and how MMPose's ``postprocess`` writes predictions: gathered for a video
        (written when it ends), one JSON file per image otherwise."""
        for prediction, sample in zip(predictions, preds):
            if self._video_input:
                self.video_info['predictions'].append(prediction)
            else:
                name = osp.splitext(osp.basename(sample.metainfo['img_path']))[0]
                mmengine.dump(prediction, osp.join(pred_out_dir, name + '.json'), indent='  ')
