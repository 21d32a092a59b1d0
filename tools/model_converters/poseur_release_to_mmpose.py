"""Convert a checkpoint of the authors' Poseur release (MMPose 0.x) to a poseur_mm checkpoint.

The release's files also load directly (``init_model``, ``load_from``, ``mim test -C``,
``MMPoseInferencer``) through ``PoseurHead``'s load pre-hook; this script writes the converted
weights once, as an MMEngine checkpoint: ``state_dict`` in poseur_mm's names and ``meta``
naming the source. With ``--config`` the weights are checked against the config's architecture
and saved as MMEngine saves that model, and ``meta`` gets the config's MMPose 1.x
``dataset_meta``. The release's optimizer state and training meta are dropped. The input is read
with ``torch.load(weights_only=True)``; nothing is written unless the conversion (and
``--check``) succeeds.

Example::

    python tools/model_converters/poseur_release_to_mmpose.py \\
        poseur_256x192_res50_6dec_coco.pth poseur_res50_coco-256x192_mmpose.pth \\
        --config \\
        configs/body_2d_keypoint/poseur/coco/td-reg_res50_poseur-8xb32-325e_coco-256x192.py \\
        --check demo.jpg
"""
import argparse
import os
import os.path as osp
import pickle
import re
import tempfile
from typing import Mapping, Optional

import numpy as np
import torch
from mmpose.apis import inference_topdown, init_model

import poseur_mm  # noqa: F401  (torch.load allow-list, module registration)
from poseur_mm.models.heads.release_compat import convert_release_state_dict

# --check: the release file (through the pre-hook) and the converted file hold the same
# weights, so their predictions agree to float rounding.
CHECK_TOLERANCE_PX = 1e-3
DECODER_LAYERS = 'head.query_decoder.layers.'
CLASS_EMBED = 'head.keypoint_encoder.class_embed.weight'


def load_release(path: str) -> dict:
    """Read a release checkpoint with ``weights_only=True``.

    Raises:
        ValueError: the file is truncated or not a PyTorch checkpoint, names a global that
            no checkpoint needs (a pickle that runs code), or has no ``state_dict``.
    """
    try:
        checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as error:
        # torch's message starts with general advice; the refused global comes later
        match = re.search(r'GLOBAL (\S+)', str(error))
        reason = f'it names {match.group(1)}' if match else str(error).splitlines()[0]
        raise ValueError(
            f'{path}: refused by torch.load(weights_only=True): {reason}. A Poseur release '
            'checkpoint holds only tensors, numbers, strings and NumPy scalars; this file '
            'is not one: do not load it') from None
    except (RuntimeError, EOFError, OSError) as error:
        raise ValueError(
            f'{path} is not a complete PyTorch checkpoint ({error}); a truncated or damaged '
            'download: download it again') from None
    if not isinstance(checkpoint, Mapping) or not isinstance(checkpoint.get('state_dict'),
                                                             Mapping):
        raise ValueError(f'{path} has no state_dict: not a checkpoint of the Poseur release')
    return checkpoint


def backbone_family(state_dict: Mapping[str, torch.Tensor]) -> str:
    """The backbone a state dict was saved from, as far as its keys tell."""
    if 'backbone.conv1.conv.weight' in state_dict:
        return 'MobileNetV2'
    if 'backbone.layer1.0.conv1.weight' in state_dict:
        return 'ResNet'
    if 'backbone.transition1.0.0.weight' in state_dict:
        return f'HRNet-W{state_dict["backbone.transition1.0.0.weight"].shape[0]}'
    return 'an unknown backbone'


def _num_layers(state_dict: Mapping[str, torch.Tensor]) -> int:
    return len({key[len(DECODER_LAYERS):].split('.')[0] for key in state_dict
                if key.startswith(DECODER_LAYERS)})


def _first_difference(ours: Mapping[str, torch.Tensor], theirs: Mapping[str, torch.Tensor],
                      prefixes: tuple) -> Optional[str]:
    """The first key under ``prefixes`` that is missing on one side or differs in shape."""
    for key in sorted(set(ours) | set(theirs)):
        if not key.startswith(prefixes):
            continue
        if key not in theirs:
            return f'{key} is not in the config\'s model'
        if key not in ours:
            return f'the config\'s model has {key}, the checkpoint does not'
        if ours[key].shape != theirs[key].shape:
            return (f'{key} has shape {tuple(ours[key].shape)} in the checkpoint and '
                    f'{tuple(theirs[key].shape)} in the config\'s model')
    return None


def check_fits(converted: Mapping[str, torch.Tensor], model_state: Mapping[str, torch.Tensor],
               config: str) -> None:
    """Raise ValueError naming the key and the fix unless the converted checkpoint has
    exactly the keys and shapes of the config's model."""
    layers, model_layers = _num_layers(converted), _num_layers(model_state)
    if layers != model_layers:
        raise ValueError(
            f'the checkpoint has {layers} decoder layers (keypoint_head.transformer.decoder.'
            f'layers.0-{layers - 1}), {config} builds {model_layers}: use the config of the '
            f'checkpoint\'s setting (model.head.query_decoder.num_layers={layers}; the '
            'release\'s 12-layer MobileNetV2 is td-reg_mobilenetv2_poseur-dec12-8xb32-325e_'
            'coco-256x192.py)')
    joints, model_joints = converted[CLASS_EMBED].shape[0], model_state[CLASS_EMBED].shape[0]
    if joints != model_joints:
        raise ValueError(
            f'the checkpoint predicts {joints} keypoints (keypoint_head.transformer.pos_embed.'
            f'weight {tuple(converted[CLASS_EMBED].shape)}), {config} has {model_joints}: use a '
            f'config with model.head.num_joints={joints} (133: configs/wholebody_2d_keypoint/'
            'poseur, 17: configs/body_2d_keypoint/poseur/coco)')
    difference = _first_difference(converted, model_state, ('backbone.', 'neck.'))
    if difference:
        raise ValueError(
            f'the checkpoint\'s backbone ({backbone_family(converted)}) does not fit the one '
            f'of {config} ({backbone_family(model_state)}): {difference}; use the config of '
            'the checkpoint\'s backbone')
    difference = _first_difference(converted, model_state, ('', ))
    if difference:
        raise ValueError(f'the checkpoint does not fit {config}: {difference}; use the config '
                         'of the checkpoint\'s setting')


def predict(model, image: str) -> np.ndarray:
    """Keypoints (K, 2) of one person, the whole image as the box."""
    return inference_topdown(model, image)[0].pred_instances.keypoints[0]


def convert(src: str, dst: str, config: Optional[str] = None,
            check_image: Optional[str] = None) -> None:
    """Convert ``src`` and write ``dst`` (through a temporary file and a rename).

    Raises:
        ValueError: ``src`` is not a release Poseur checkpoint, does not fit ``config``, or
            its prediction on ``check_image`` changes with the conversion.
    """
    if not osp.isdir(osp.dirname(osp.abspath(dst))):
        raise ValueError(f'the folder of {dst} does not exist: create it first')
    release = load_release(src)
    state_dict = convert_release_state_dict(release['state_dict'])
    release_meta = release.get('meta') or {}
    meta = dict(converted_from=dict(
        file=osp.basename(src), **{key: release_meta[key] for key in
                                   ('mmpose_version', 'epoch', 'iter') if key in release_meta}))
    if config:
        model = init_model(config, device='cpu')
        check_fits(state_dict, model.state_dict(), config)
        model.load_state_dict(state_dict, strict=True)
        state_dict = model.state_dict()  # as MMEngine saves it, with the module versions
        meta['dataset_meta'] = model.dataset_meta
    fd, tmp = tempfile.mkstemp(suffix='.pth', dir=osp.dirname(osp.abspath(dst)))
    os.close(fd)
    try:
        torch.save(dict(meta=meta, state_dict=state_dict), tmp)
        if check_image:
            before = predict(init_model(config, src, device='cpu'), check_image)
            after = predict(init_model(config, tmp, device='cpu'), check_image)
            difference = float(np.abs(before - after).max())
            print(f'--check {check_image}: the release file (loaded through PoseurHead\'s '
                  f'pre-hook) and the converted file differ by at most {difference:.2e} px')
            if difference > CHECK_TOLERANCE_PX:
                raise ValueError(f'the converted checkpoint predicts keypoints {difference} px '
                                 f'away from the release file\'s on {check_image}')
        os.replace(tmp, dst)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert a Poseur release checkpoint (MMPose 0.x) to poseur_mm.')
    parser.add_argument('src', help='the release checkpoint (.pth)')
    parser.add_argument('dst', help='the converted MMEngine checkpoint to write')
    parser.add_argument('--config', help='poseur_mm config of the checkpoint\'s setting: '
                        'checks the architecture and stores its dataset_meta')
    parser.add_argument('--check', metavar='IMG', help='with --config: predict on IMG with '
                        'the release file and the converted one and require they agree')
    args = parser.parse_args(argv)
    if args.check and not args.config:
        parser.error('--check needs --config')
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    convert(args.src, args.dst, args.config, args.check)
    print(f'wrote {args.dst}')


if __name__ == '__main__':
    try:
        main()
    except ValueError as error:
        raise SystemExit(f'error: {error}')
