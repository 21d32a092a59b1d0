"""The main job: synthetic set -> train with MMPose's runner -> COCO AP -> pictures and curves.

Run from the repository root (``tools/demo.sh`` does)::

    python -m projects.synthetic_pose.demo [--config CFG] [--input-size W H] [--epochs N]

It writes the synthetic set to ``--data-root`` (skipped when the same set is already there)
and into ``--work-dir``: MMEngine's logs and final checkpoint, ``curves.png`` (loss and AP),
``predictions/`` (validation images drawn by MMPose's ``PoseLocalVisualizer``) and
``results.json`` (AP on ground-truth and on detected boxes, timings).
"""
import argparse
import json
import os
import os.path as osp
import time
from typing import List, Optional, Sequence

import matplotlib
import mmcv
import numpy as np
from mmengine.config import Config, DictAction
from mmengine.runner import Runner
from mmpose.apis import inference_topdown
from mmpose.structures import merge_data_samples

from .synthetic_runs import (SYNTHETIC_CONFIGS, own_visualizer, prepare_data, set_data_root,
                             set_epochs, set_input_size)

matplotlib.use('Agg')  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

DEFAULT_CONFIG = osp.join(SYNTHETIC_CONFIGS, 'td-reg_res18_poseur-1xb16-10e_synthetic-64x48.py')
# Measured on this project's 2-core CPU (projects/synthetic_pose/README.md, "Measured").
DEFAULT_RUN = ('The default run (2,500 training and 250 validation images, 10 epochs of 310 '
               'iterations at 64x48) takes about 16 minutes on a 2-core CPU and reaches '
               'COCO AP 0.45 on ground-truth boxes.')
# The default run's validation AP was 0.000, 0.009 and 0.094 after 310, 620 and 930
# iterations: a schedule shorter than this has not learnt yet.
MIN_ITERATIONS = 1000


def plot_curves(scalars_file: str, iters_per_epoch: int, out_file: str) -> None:
    """Training loss (per logged iteration) and validation AP (per epoch) against epochs."""
    train, val = [], []
    with open(scalars_file) as f:
        for line in f:
            record = json.loads(line)
            if 'loss' in record:
                train.append((record['iter'] / iters_per_epoch, record['loss']))
            elif 'coco/AP' in record:
                val.append((record['step'], record['coco/AP'], record['coco/AP .5']))
    fig, (ax_loss, ax_ap) = plt.subplots(1, 2, figsize=(10, 4))
    if train:
        ax_loss.plot(*zip(*train))
    ax_loss.set(xlabel='epoch', ylabel='loss (sum of RLE terms)', title='training loss')
    if val:
        epochs, ap, ap50 = zip(*val)
        ax_ap.plot(epochs, ap, 'o-', label='AP')
        ax_ap.plot(epochs, ap50, 's--', label='AP .5')
        ax_ap.legend()
    ax_ap.set(xlabel='epoch', ylabel='COCO keypoint AP', ylim=(0, 1),
              title='validation (ground-truth boxes)')
    fig.tight_layout()
    fig.savefig(out_file, dpi=100)
    plt.close(fig)


def draw_predictions(runner: Runner, cfg: Config, out_dir: str, num_images: int) -> List[str]:
    """Predict every ground-truth box of the first ``num_images`` validation images and draw
    ground truth (left) and prediction (right) with the runner's ``PoseLocalVisualizer``."""
    dataset = runner.val_dataloader.dataset
    model = runner.model
    model.cfg, model.dataset_meta = cfg, dataset.metainfo  # what inference_topdown reads
    visualizer = runner.visualizer
    visualizer.set_dataset_meta(dataset.metainfo)
    # every predicted keypoint is drawn, its opacity its score: a model that is unsure
    # shows faint keypoints instead of none
    visualizer.show_keypoint_weight = True
    by_image = {}
    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        by_image.setdefault(info['img_path'], []).append(info)
    os.makedirs(out_dir, exist_ok=True)
    written = []
    model.eval()
    for img_path, infos in list(by_image.items())[:num_images]:
        boxes = np.concatenate([info['bbox'] for info in infos])
        sample = merge_data_samples(inference_topdown(model, img_path, boxes, 'xyxy'))
        sample.gt_instances.keypoints = np.concatenate([i['keypoints'] for i in infos])
        sample.gt_instances.keypoints_visible = np.concatenate(
            [i['keypoints_visible'] for i in infos])
        out_file = osp.join(out_dir, osp.basename(img_path))
        visualizer.add_datasample(osp.basename(img_path),
                                  mmcv.imread(img_path, channel_order='rgb'), sample,
                                  draw_gt=True, draw_bbox=True, kpt_thr=0.,
                                  out_file=out_file)
        written.append(out_file)
    return written


def schedule_warning(iterations: int) -> Optional[str]:
    """A warning for a schedule too short to learn anything, None for a long enough one."""
    if iterations >= MIN_ITERATIONS:
        return None
    return (f'[demo] warning: this schedule trains {iterations} iterations. The default run '
            f'was still below AP 0.1 after 930 of its 3,100, so expect an AP near 0 and faint '
            f'keypoints in the pictures; train at least {MIN_ITERATIONS} iterations (more '
            '--epochs or --num-train).')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Train and evaluate Poseur on a synthetic COCO-format keypoint set.',
        epilog=DEFAULT_RUN, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--config', default=DEFAULT_CONFIG, help='the model config')
    parser.add_argument('--work-dir', default='work_dirs/synthetic_pose_demo',
                        help='logs, checkpoint, pictures, curves and results.json')
    parser.add_argument('--data-root', default='data/synthetic_pose',
                        help='where the synthetic set is written (reused when it matches)')
    parser.add_argument('--num-train', type=int, default=2500, help='training images')
    parser.add_argument('--num-val', type=int, default=250, help='validation images')
    parser.add_argument('--seed', type=int, default=0, help='seed of the synthetic set')
    parser.add_argument('--epochs', type=int,
                        help="schedule length; None keeps the config's (10 in the default)")
    parser.add_argument('--input-size', type=int, nargs=2, metavar=('W', 'H'),
                        help="crop size, e.g. 96 128; None keeps the config's (48 64 in "
                        'the default)')
    parser.add_argument('--num-vis', type=int, default=8, help='validation images to draw')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='override config entries, xxx=yyy (applied last)')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    start = time.perf_counter()
    data_root = args.data_root.rstrip('/') + '/'
    generate_s = prepare_data(data_root, num_train=args.num_train, num_val=args.num_val,
                              seed=args.seed)

    cfg = Config.fromfile(args.config)
    cfg.work_dir = args.work_dir
    own_visualizer(cfg)
    set_data_root(cfg, data_root)
    if args.input_size:
        set_input_size(cfg, tuple(args.input_size))
    if args.epochs:
        set_epochs(cfg, args.epochs)
    cfg.merge_from_dict(args.cfg_options)
    runner = Runner.from_cfg(cfg)
    warning = schedule_warning(cfg.train_cfg.max_epochs * len(runner.train_dataloader))
    if warning:
        print(warning)

    train_start = time.perf_counter()
    runner.train()  # validates on ground-truth boxes after the last epoch too
    gt_box_metrics = {key[len('val/'):]: scalar.current()
                      for key, scalar in runner.message_hub.log_scalars.items()
                      if key.startswith('val/coco/')}
    train_s = time.perf_counter() - train_start
    print('[demo] COCO keypoint AP with detected (jittered) boxes:')
    det_box_metrics = {k: v for k, v in runner.test().items() if k.startswith('coco/')}
    pictures = draw_predictions(runner, cfg, osp.join(args.work_dir, 'predictions'),
                                args.num_vis)
    curves = osp.join(args.work_dir, 'curves.png')
    plot_curves(osp.join(runner.log_dir, 'vis_data', 'scalars.json'),
                len(runner.train_dataloader), curves)

    results = dict(gt_boxes={k: float(v) for k, v in gt_box_metrics.items()},
                   detected_boxes={k: float(v) for k, v in det_box_metrics.items()},
                   generate_s=round(generate_s, 1), train_s=round(train_s, 1),
                   total_s=round(time.perf_counter() - start, 1))
    with open(osp.join(args.work_dir, 'results.json'), 'w') as f:
        json.dump(results, f, indent=1)
    print('\n[demo] summary (COCO keypoint metrics on the synthetic val set)')
    print(f"{'metric':<10}{'GT boxes':>10}{'det boxes':>11}")
    for key in gt_box_metrics:
        print(f"{key.split('/')[-1]:<10}{gt_box_metrics[key]:>10.3f}"
              f"{det_box_metrics[key]:>11.3f}")
    print(f'[demo] {DEFAULT_RUN}')
    print(f"[demo] train+val {train_s:.0f} s, total {results['total_s']:.0f} s; curves: "
          f'{curves}; predictions: {osp.dirname(pictures[0]) if pictures else "none"}')
    return results


if __name__ == '__main__':
    main()
