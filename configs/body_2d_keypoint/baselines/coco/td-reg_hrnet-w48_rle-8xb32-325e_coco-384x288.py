# RLE, HRNet-W48, COCO 384x288: pairs with Poseur HRNet-W48. MMPose ships no HRNet RLE config:
# this is the HRNet-W32 RLE baseline with HRNet-W48 at 384x288, and photometric distortion after
# the affine crop, as in Poseur's HRNet-W48 config.
_base_ = ['./td-reg_hrnet-w32_rle-8xb32-325e_coco-256x192.py']

# codec settings
codec = dict(type='RegressionLabel', input_size=(288, 384))

# model settings
model = dict(
    backbone=dict(_base_.poseur_hrnet_w48, _delete_=True),
    head=dict(in_channels=384, decoder=codec))

# pipelines
train_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='RandomFlip', direction='horizontal'),
    dict(type='RandomHalfBody'),
    dict(type='RandomBBoxTransform'),
    dict(type='TopdownAffine', input_size=codec['input_size']),
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
