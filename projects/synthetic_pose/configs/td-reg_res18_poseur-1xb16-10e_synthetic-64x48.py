# Poseur on the synthetic COCO-format set (projects/synthetic_pose/synthetic_coco.py), sized for a
# 2-core CPU: ResNet-18 from scratch, 64x48 crops, 64-dim 3-layer decoder, AdamW, 10 epochs.
_base_ = [
    'mmpose::body_2d_keypoint/topdown_regression/coco/'
    'td-reg_res50_rle-8xb64-210e_coco-256x192.py',
    '../../../configs/_base_/poseur.py'
]
custom_imports = dict(imports=['poseur_mm'], allow_failed_imports=False)

# runtime
train_cfg = dict(max_epochs=10, val_interval=1)
# log every 20 iterations; keep only the final checkpoint
default_hooks = dict(logger=dict(interval=20), checkpoint=dict(interval=-1, save_best=None))
randomness = dict(seed=0)

# optimizer
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=2e-3, weight_decay=1e-4),
    clip_grad=dict(max_norm=1.0))

# learning policy
param_scheduler = [
    dict(type='LinearLR', begin=0, end=200, start_factor=0.01, by_epoch=False),  # warm-up
    dict(type='CosineAnnealingLR', begin=0, end=train_cfg['max_epochs'], eta_min=1e-5,
         by_epoch=True)
]
auto_scale_lr = dict(base_batch_size=16)

# codec settings
codec = dict(type='RegressionLabel', input_size=(48, 64))
embed_dims = 64  # neck output = head input; GN(32) needs a multiple of 32

# model settings
model = dict(
    # ResNet-18 from scratch: no pretrained checkpoint to download
    backbone=dict(_delete_=True, type='ResNet', depth=18, out_indices=(0, 1, 2, 3)),
    neck=dict(
        _base_.poseur_neck, _delete_=True, in_channels=[64, 128, 256, 512],
        out_channels=embed_dims),
    head=dict(
        _delete_=True,
        type='PoseurHead',
        in_channels=embed_dims,
        num_joints=17,
        embed_dims=embed_dims,
        # PoseurDecoder: 3 layers of self-attention, EMSDA cross-attention and FFN
        query_decoder=dict(
            num_layers=3, layer_cfg=dict(num_heads=4, num_points=4, ffn_dims=4 * embed_dims)),
        decoder=codec))

# base dataset settings
data_root = 'data/synthetic_pose/'

# pipelines
train_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='RandomFlip', direction='horizontal'),
    # milder than COCO's (scale 0.5-1.5, rotation 80): the figures already vary in pose,
    # scale and rotation, and the schedule is short
    dict(type='RandomBBoxTransform', scale_factor=(0.75, 1.25), rotate_factor=30.0),
    dict(type='TopdownAffine', input_size=codec['input_size']),
    dict(type='GenerateTarget', encoder=codec),
    dict(type='PackPoseInputs')
]
val_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='TopdownAffine', input_size=codec['input_size']),
    dict(type='PackPoseInputs')
]

# data loaders: validation on ground-truth boxes, test on the jittered detections; loading
# runs in the main process: on 2 cores a loader process slows PyTorch's two threads down
# (0.32 -> 0.28 s per Poseur iteration measured)
train_dataloader = dict(
    batch_size=16,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        ann_file='annotations/person_keypoints_train.json',
        data_prefix=dict(img='train/'),
        pipeline=train_pipeline))
val_dataloader = dict(
    train_dataloader,
    batch_size=64,
    dataset=dict(
        train_dataloader['dataset'],
        ann_file='annotations/person_keypoints_val.json',
        bbox_file=None,
        data_prefix=dict(img='val/'),
        pipeline=val_pipeline))
test_dataloader = dict(
    val_dataloader,
    dataset=dict(
        val_dataloader['dataset'],
        bbox_file=data_root + 'person_detection_results/detections_val.json'))

# evaluators: Poseur's instance score (bbox score + mean + max of the keypoints' Laplace
# scores) and OKS-NMS, as the COCO configs
val_evaluator = dict(
    type='CocoMetric',
    ann_file=data_root + 'annotations/person_keypoints_val.json',
    score_mode='bbox_rle',
    nms_mode='oks_nms')
test_evaluator = val_evaluator

# Poseur's checks; resume continues the random streams
custom_hooks = [
    dict(type='SyncBuffersHook'), *_base_.poseur_custom_hooks,
    dict(type='RNGStateHook')
]
