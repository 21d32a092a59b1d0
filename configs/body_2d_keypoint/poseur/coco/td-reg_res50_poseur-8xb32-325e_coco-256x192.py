# Poseur, ResNet-50, COCO 256x192: the published recipe. MMPose's RLE config supplies the data,
# augmentation, evaluation and the ImageNet-pretrained ResNet-50; this file replaces the neck
# and head and sets Poseur's optimizer, schedule and batch size. The other Poseur configs
# inherit this one.
_base_ = [
    'mmpose::body_2d_keypoint/topdown_regression/coco/'
    'td-reg_res50_rle-8xb64-210e_coco-256x192.py'
]

custom_imports = dict(imports=['poseur_mm'], allow_failed_imports=False)

# runtime
train_cfg = dict(max_epochs=325)
# the published runs used SyncBN over 8 GPUs; the runner reverts it to BN on one device
sync_bn = 'torch'

# optimizer: the deformable attention's sampling offsets learn at 0.1x the base lr
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=1e-3, weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys={'sampling_offsets': dict(lr_mult=0.1)}))

# learning policy
param_scheduler = [
    dict(type='LinearLR', begin=0, end=500, start_factor=0.001, by_epoch=False),  # warm-up
    dict(
        type='MultiStepLR',
        begin=0,
        end=train_cfg['max_epochs'],
        milestones=[255, 310],
        gamma=0.1,
        by_epoch=True)
]

# automatically scaling LR based on the actual training batch size (8 GPUs x 32)
auto_scale_lr = dict(base_batch_size=256)

# codec settings
codec = dict(type='RegressionLabel', input_size=(192, 256))

# model settings
model = dict(
    backbone=dict(out_indices=(0, 1, 2, 3)),  # ResNet-50, all four stages: strides 4 to 32
    neck=dict(
        _delete_=True,
        type='ChannelMapper',  # 1x1 conv + GroupNorm per level, no activation
        in_channels=[256, 512, 1024, 2048],
        out_channels=256,
        kernel_size=1,
        act_cfg=None,
        norm_cfg=dict(type='GN', num_groups=32),  # GroupNorm
        num_outs=4),
    head=dict(
        _delete_=True,
        type='PoseurHead',
        in_channels=256,
        num_joints=17,
        num_feature_levels=4,
        embed_dims=256,
        query_decoder=dict(  # PoseurDecoder
            num_layers=6,
            layer_cfg=dict(  # PoseurDecoderLayer
                num_heads=8, num_points=4, ffn_dims=1024, dropout=0.1)),
        num_noise_groups=3,
        noisy_points_per_group=4,
        noise_variance=0.2,
        score_radius=0.2,
        flip_fusion='uncertainty',  # the fusion behind the published numbers
        loss=dict(type='PoseurRLELoss'),  # RLE with Poseur's flow prior
        decoder=codec))

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
train_dataloader = dict(batch_size=32, dataset=dict(pipeline=train_pipeline))

# evaluators: bbox score + mean + max keypoint score, then OKS-NMS
val_evaluator = dict(score_mode='bbox_rle', nms_mode='oks_nms')
test_evaluator = val_evaluator

# check neck and datasets against the head when the run starts; stop on a NaN/inf loss
# before it is checkpointed; resume continues the random streams
custom_hooks = [
    dict(type='SyncBuffersHook'),  # the base runtime's, kept
    dict(type='PoseurCheckHook'),
    dict(type='NonFiniteLossHook'),
    dict(type='RNGStateHook')
]
