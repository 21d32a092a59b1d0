# Poseur, HRNet-W48, COCO 384x288, with photometric distortion as published.
_base_ = ['./td-reg_hrnet-w32_poseur-8xb32-325e_coco-256x192.py']

# codec settings
codec = dict(type='RegressionLabel', input_size=(288, 384))

# model settings
model = dict(
    backbone=dict(_base_.poseur_hrnet_w48, _delete_=True),
    neck=dict(in_channels=[48, 96, 192, 384]),
    head=dict(decoder=codec))

# pipelines
train_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='RandomFlip', direction='horizontal'),
    dict(type='RandomHalfBody'),
    dict(type='RandomBBoxTransform', shift_prob=0.),  # no centre shift, as published
    dict(type='TopdownAffine', input_size=codec['input_size']),
    # the release also applies Cutout here; MMPose 1.x has none (see the README)
    dict(type='PhotometricDistortion'),
    dict(type='GenerateTarget', encoder=codec),
    dict(type='PackPoseInputs')
]
val_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='TopdownAffine', input_size=codec['input_size']),
    dict(type='PackPoseInputs')
]

# data loaders
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = val_dataloader
