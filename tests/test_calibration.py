"""tools/analysis/calibration.py: coverage of Laplace intervals, the temperature, and the
collection of sigmas and errors through MMPose's prediction path."""
import math

import numpy as np
import pandas as pd
import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from poseur_tiny_checkpoint import CONFIG

from tools.analysis.calibration import collect, coverage, fit_temperature, report

N = 40000


def _laplace_errors(scale_factor: float, seed: int = 0):
    """|error| of Laplace draws whose true scale is scale_factor x the reported one."""
    rng = np.random.default_rng(seed)
    reported = rng.uniform(0.5, 20.0, N)
    errors = np.abs(rng.laplace(0.0, scale_factor * reported))
    return errors, reported


@pytest.mark.parametrize('level', [0.5, 0.9])
def test_honest_scales_cover_their_level_within_sampling_error(level):
    errors, scales = _laplace_errors(1.0)
    tolerance = 4 * math.sqrt(level * (1 - level) / N)
    assert abs(coverage(errors, scales, level) - level) < tolerance


@pytest.mark.parametrize('level', [0.5, 0.9])
def test_over_confident_scales_show_the_under_coverage(level):
    """Reported b is half the true scale: the c-interval holds 1 - (1 - c)^(1/2)."""
    errors, scales = _laplace_errors(2.0)
    expected = 1 - (1 - level)**0.5  # 0.293 at 50 %, 0.684 at 90 %
    assert abs(coverage(errors, scales, level) - expected) < 4 * math.sqrt(0.25 / N)


def test_temperature_recovers_the_scale_factor_and_fixes_coverage():
    errors, scales = _laplace_errors(3.0, seed=1)
    temperature = fit_temperature(errors, scales)
    assert temperature == pytest.approx(3.0, rel=0.02)
    held_out, held_scales = _laplace_errors(3.0, seed=2)  # fitted on one draw, tested on another
    assert abs(coverage(held_out, temperature * held_scales, 0.9) - 0.9) < 0.01


def test_report_has_a_row_per_keypoint_type_and_overall():
    errors, scales = _laplace_errors(1.0)
    frame = pd.DataFrame(dict(keypoint=np.arange(N) % 3, axis='x', error=errors, sigma=scales))
    table = report(frame, ['a', 'b', 'c'])
    assert table['keypoint'].tolist() == ['a', 'b', 'c', 'all']
    assert table['n'].tolist() == [N // 3 + 1, N // 3, N // 3, N]
    assert (table['spearman'] > 0.3).all()  # errors grow with the scale
    assert abs(table.iloc[-1]['coverage_50'] - 0.5) < 0.01


def test_collect_reads_sigmas_and_errors_of_every_visible_keypoint(model):
    cfg = Config.fromfile(CONFIG)
    frame = collect(model, cfg.val_dataloader)
    loader_visible = 0
    for batch in Runner.build_dataloader(cfg.val_dataloader):
        for sample in batch['data_samples']:
            loader_visible += int((np.asarray(sample.gt_instances.keypoints_visible) > 0).sum())
    assert len(frame) == 2 * loader_visible and set(frame['axis']) == {'x', 'y'}
    assert (frame['sigma'] > 0).all() and np.isfinite(frame['error']).all()
