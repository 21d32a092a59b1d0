# Poseur, ResNet-50, COCO 256x192: the published recipe. MMPose's RLE config supplies the data,
# augmentation, evaluation and the ImageNet-pretrained ResNet-50; Poseur's neck, head,
# optimizer, schedule and batch size come from configs/_base_/poseur.py. The other Poseur COCO
# configs inherit this one.
_base_ = [
    'mmpose::body_2d_keypoint/topdown_regression/coco/'
    'td-reg_res50_rle-8xb64-210e_coco-256x192.py',
    '../../../_base_/poseur.py'
]

custom_imports = dict(imports=['poseur_mm'], allow_failed_imports=False)

# runtime, optimizer and learning policy: the published ones
train_cfg = _base_.poseur_train_cfg
sync_bn = _base_.poseur_sync_bn
optim_wrapper = dict(
    optimizer=dict(_base_.poseur_optimizer, _delete_=True),
    paramwise_cfg=_base_.poseur_paramwise_cfg)
param_scheduler = _base_.poseur_param_scheduler
auto_scale_lr = _base_.poseur_auto_scale_lr

# codec settings
codec = dict(type='RegressionLabel', input_size=(192, 256))

# model settings: ResNet-50's four stages (strides 4 to 32), Poseur's neck and head
model = dict(
    backbone=dict(out_indices=(0, 1, 2, 3)),
    neck=dict(_base_.poseur_neck, _delete_=True, in_channels=[256, 512, 1024, 2048]),
    head=dict(_base_.poseur_head, _delete_=True, num_joints=17, decoder=codec))

# pipelines: MMPose's RLE augmentation without the bbox centre shift that
# RandomBBoxTransform applies by default (p 0.3); the release's COCO configs never shift it
# (the remaining scale and rotation differences are listed in the README)
train_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='RandomFlip', direction='horizontal'),
    dict(type='RandomHalfBody'),
    dict(type='RandomBBoxTransform', shift_prob=0.),
    dict(type='TopdownAffine', input_size=codec['input_size']),
    dict(type='GenerateTarget', encoder=codec),
    dict(type='PackPoseInputs')
]

# data loaders
train_dataloader = dict(_base_.poseur_train_dataloader, dataset=dict(pipeline=train_pipeline))

# evaluators: bbox score + mean + max keypoint score, then OKS-NMS
val_evaluator = dict(score_mode='bbox_rle', nms_mode='oks_nms')
test_evaluator = val_evaluator

# Poseur's checks, and resume continues the random streams
custom_hooks = [
    dict(type='SyncBuffersHook'), *_base_.poseur_custom_hooks,
    dict(type='RNGStateHook')
]
