# RLE, HRNet-W32, COCO 256x192: pairs with Poseur HRNet-W32. MMPose ships no HRNet RLE config:
# this is the paired heatmap baseline with MMPose's RLE head (and RLE's Adam lr) on global
# average pooling of HRNet's stride-32 branch, the features Poseur's coarse regression uses.
_base_ = ['./td-hm_hrnet-w32_8xb32-325e_coco-256x192.py']

# codec settings
codec = dict(type='RegressionLabel', input_size=(192, 256))

# model settings
model = dict(
    backbone=dict(extra=dict(stage4=dict(multiscale_output=True))),
    neck=dict(type='GlobalAveragePooling'),  # the head reads the last level
    head=dict(
        _delete_=True,
        type='RLEHead',
        in_channels=256,
        num_joints=17,
        loss=dict(type='RLELoss', use_target_weight=True),
        decoder=codec),
    test_cfg=dict(_delete_=True, flip_test=True, shift_coords=True))

# optimizer
optim_wrapper = dict(optimizer=dict(lr=1e-3))

# pipelines: regression targets in place of heatmaps
train_pipeline = [
    dict(t, encoder=codec) if t.type == 'GenerateTarget' else t for t in _base_.train_pipeline
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

# evaluators
val_evaluator = dict(score_mode='bbox_rle')
test_evaluator = val_evaluator

# the top-level codec replaces, not merges into, the base's (the uses above keep this dict)
codec = dict(codec, _delete_=True)
