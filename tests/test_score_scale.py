"""tools/analysis/score_scale.py: the same predictions evaluated with scaled keypoint scores."""

import pytest
from mmengine.config import Config

from poseur_tiny_checkpoint import CONFIG

from tools.analysis.score_scale import evaluate, predict


def test_scaling_keypoint_scores_leaves_ground_truth_box_ap_unchanged(model):
    """With ground-truth boxes every bbox score is 1, so bbox + s * (mean + max) orders the
    instances alike for any s > 0: the AP must not move (docs/recipe.md relies on it); the
    stored predictions are not changed by an evaluation."""
    cfg = Config.fromfile(CONFIG)
    metainfo, batches = predict(model, cfg.val_dataloader)
    assert sum(len(samples) for _, samples in batches) == 12
    plain = evaluate(cfg.val_evaluator, metainfo, batches, 1.0)
    scaled = evaluate(cfg.val_evaluator, metainfo, batches, 0.7)
    assert scaled == pytest.approx(plain)
    kept = batches[0][1][0]['pred_instances']['keypoint_scores'].copy()
    evaluate(cfg.val_evaluator, metainfo, batches, 0.0)
    assert (batches[0][1][0]['pred_instances']['keypoint_scores'] == kept).all()  # not mutated
