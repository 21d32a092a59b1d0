# RLE regression baseline paired with td-reg_res18_poseur-1xb16-10e_synthetic-64x48.py: the
# same set, ResNet-18 from scratch, crops, schedule and augmentation; MMPose's RLEHead (global
# average pool + FC on the last stage, as MMPose's RLE configs) in place of Poseur's neck and
# head.
_base_ = ['./td-reg_res18_poseur-1xb16-10e_synthetic-64x48.py']

model = dict(
    backbone=dict(out_indices=(3, )),
    neck=dict(_delete_=True, type='GlobalAveragePooling'),
    head=dict(
        _delete_=True,
        type='RLEHead',
        in_channels=512,
        num_joints=17,
        loss=dict(type='RLELoss', use_target_weight=True),
        decoder=_base_.codec))

# the base's PoseurCheckHook does not apply to RLEHead
custom_hooks = [
    dict(type='SyncBuffersHook'),
    dict(type='NonFiniteLossHook'),
    dict(type='RNGStateHook')
]
