# A tiny Poseur for the `mim train` / `mim test` checks: MMPose's COCO RLE config (runtime,
# dataset, pipelines, CocoMetric) with a ResNet-18 from scratch, Poseur's neck, a 2-layer decoder,
# 128x96 crops and 2 epochs on the MMPose test images (ground-truth boxes, no downloads).
_base_ = [
    'mmpose::body_2d_keypoint/topdown_regression/coco/'
    'td-reg_res50_rle-8xb64-210e_coco-256x192.py',
    '../../configs/_base_/poseur.py'
]

custom_imports = dict(imports=['poseur_mm'], allow_failed_imports=False)

# runtime
train_cfg = dict(max_epochs=2, val_interval=1)

# optimizer
optim_wrapper = dict(optimizer=dict(_delete_=True, type='AdamW', lr=1e-4, weight_decay=1e-4))

# learning policy
param_scheduler = [
    dict(type='LinearLR', begin=0, end=4, start_factor=0.1, by_epoch=False),  # warm-up
    dict(type='MultiStepLR', begin=0, end=2, milestones=[1], gamma=0.1, by_epoch=True)
]

# codec settings
codec = dict(type='RegressionLabel', input_size=(96, 128))

# model settings: PoseurHead's defaults but for the decoder depth
model = dict(
    backbone=dict(_delete_=True, type='ResNet', depth=18, out_indices=(0, 1, 2, 3)),
    neck=dict(_base_.poseur_neck, _delete_=True, in_channels=[64, 128, 256, 512]),
    head=dict(
        _delete_=True,
        type='PoseurHead',
        in_channels=256,
        num_joints=17,
        query_decoder=dict(num_layers=2),
        loss=dict(type='PoseurRLELoss'),
        decoder=codec))

# the MMPose test images, beside their annotation file
data_root = '{{ fileDirname }}/coco/'

# pipelines
train_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='RandomFlip', direction='horizontal'),
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

# data loaders: ground-truth boxes in validation
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root, ann_file='test_coco.json', data_prefix=dict(img=''),
        pipeline=train_pipeline))
val_dataloader = dict(
    train_dataloader,
    dataset=dict(train_dataloader['dataset'], bbox_file=None, pipeline=val_pipeline))
test_dataloader = val_dataloader

# hooks
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1))

# evaluators
val_evaluator = dict(
    type='CocoMetric', ann_file=data_root + 'test_coco.json', score_mode='bbox_rle')
test_evaluator = val_evaluator

# the model's checks run when mim starts the run; a NaN/inf loss stops it before a checkpoint
custom_hooks = [dict(type='SyncBuffersHook'), *_base_.poseur_custom_hooks]
