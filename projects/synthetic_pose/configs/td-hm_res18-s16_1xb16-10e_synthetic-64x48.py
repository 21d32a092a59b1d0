# Heatmap baseline paired with td-reg_res18_poseur-1xb16-10e_synthetic-64x48.py: same
# synthetic set, ResNet-18 from scratch, 64x48 crops, AdamW schedule and augmentation.
# At 64x48 ResNet-18's stride-32 map is 2x2 (48 / 32 rounds up), which three deconvs turn
# into 16x16, not the 16x12 heatmap; so the head reads the stride-16 map (4x3) of the first
# three stages and upsamples it with two deconvs to 16x12 (stride 4, as SimpleBaseline).
_base_ = ['mmpose::body_2d_keypoint/topdown_heatmap/coco/td-hm_res50_8xb64-210e_coco-256x192.py']

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
codec = dict(type='MSRAHeatmap', input_size=(48, 64), heatmap_size=(12, 16), sigma=2)

# model settings
model = dict(
    # ResNet-18 from scratch, stages 1-3 (stride 16)
    backbone=dict(
        _delete_=True,
        type='ResNet',
        depth=18,
        num_stages=3,
        strides=(1, 2, 2),
        dilations=(1, 1, 1),
        out_indices=(2, )),
    head=dict(
        in_channels=256,
        deconv_out_channels=(256, 256),
        deconv_kernel_sizes=(4, 4),
        decoder=codec))

# base dataset settings
data_root = 'data/synthetic_pose/'

# pipelines
train_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='RandomFlip', direction='horizontal'),
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
    batch_size=64,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        ann_file='annotations/person_keypoints_val.json',
        bbox_file=None,
        data_prefix=dict(img='val/'),
        pipeline=val_pipeline))
test_dataloader = dict(
    batch_size=64,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        type='CocoDataset',
        data_root=data_root,
        data_mode='topdown',
        ann_file='annotations/person_keypoints_val.json',
        bbox_file=data_root + 'person_detection_results/detections_val.json',
        data_prefix=dict(img='val/'),
        test_mode=True,
        pipeline=val_pipeline))

# evaluators
val_evaluator = dict(ann_file=data_root + 'annotations/person_keypoints_val.json')
test_evaluator = val_evaluator
