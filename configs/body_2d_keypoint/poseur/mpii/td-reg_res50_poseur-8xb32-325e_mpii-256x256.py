# Poseur, ResNet-50, MPII 256x256 (ground-truth boxes, PCKh). MMPose's MPII RLE config supplies
# the data, augmentation and evaluation; the model, optimizer and schedule are Poseur's
# (configs/_base_/poseur.py), as in the COCO config.
_base_ = [
    'mmpose::body_2d_keypoint/topdown_regression/mpii/'
    'td-reg_res50_rle-8xb64-210e_mpii-256x256.py',
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
train_dataloader = _base_.poseur_train_dataloader

# model settings: ResNet-50's four stages (strides 4 to 32), Poseur's neck and head
codec = dict(type='RegressionLabel', input_size=(256, 256))
model = dict(
    backbone=dict(out_indices=(0, 1, 2, 3)),
    neck=dict(_base_.poseur_neck, _delete_=True, in_channels=[256, 512, 1024, 2048]),
    head=dict(_base_.poseur_head, _delete_=True, num_joints=16, decoder=codec))

custom_hooks = [
    dict(type='SyncBuffersHook'), *_base_.poseur_custom_hooks,
    dict(type='RNGStateHook')  # resume continues the random streams
]
