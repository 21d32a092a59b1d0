# Poseur's published settings (ECCV 2022), defined once for the Poseur configs and for the
# baselines paired with them. A config lists this file in `_base_` beside the MMPose config it
# builds on and takes each setting as `_base_.poseur_*`; the `poseur_` names keep clear of that
# config's keys (MMEngine refuses a key that two bases define).

# schedule: 325 epochs, batch 8 GPUs x 32 with SyncBN, lr x0.1 at epochs 255 and 310 after a
# 500-iteration linear warm-up
poseur_train_cfg = dict(max_epochs=325)
poseur_param_scheduler = [
    dict(type='LinearLR', begin=0, end=500, start_factor=0.001, by_epoch=False),  # warm-up
    dict(
        type='MultiStepLR',
        begin=0,
        end=poseur_train_cfg['max_epochs'],
        milestones=[255, 310],
        gamma=0.1,
        by_epoch=True)
]
poseur_train_dataloader = dict(batch_size=32)
# automatically scaling LR based on the actual training batch size (8 GPUs x 32)
poseur_auto_scale_lr = dict(base_batch_size=256)
# the published runs used SyncBN over 8 GPUs; the runner reverts it to BN on one device
poseur_sync_bn = 'torch'

# optimizer: AdamW; the deformable attention's sampling offsets learn at 0.1x the base lr
poseur_optimizer = dict(type='AdamW', lr=1e-3, weight_decay=1e-4)
poseur_paramwise_cfg = dict(custom_keys={'sampling_offsets': dict(lr_mult=0.1)})

# backbones of the published runs besides MMPose's ResNet-50, ImageNet-pretrained (as MMPose's
# heatmap configs load them); a config adds the stages it reads (out_indices)
poseur_mobilenetv2 = dict(
    type='MobileNetV2',
    widen_factor=1.,
    init_cfg=dict(type='Pretrained', checkpoint='mmcls://mobilenet_v2'))
# HRNet-W32 with all four branches as outputs (strides 4, 8, 16, 32)
poseur_hrnet_w32 = dict(
    type='HRNet',
    in_channels=3,
    extra=dict(
        stage1=dict(
            num_modules=1,
            num_branches=1,
            block='BOTTLENECK',
            num_blocks=(4, ),
            num_channels=(64, )),
        stage2=dict(
            num_modules=1,
            num_branches=2,
            block='BASIC',
            num_blocks=(4, 4),
            num_channels=(32, 64)),
        stage3=dict(
            num_modules=4,
            num_branches=3,
            block='BASIC',
            num_blocks=(4, 4, 4),
            num_channels=(32, 64, 128)),
        stage4=dict(
            num_modules=3,
            num_branches=4,
            block='BASIC',
            num_blocks=(4, 4, 4, 4),
            num_channels=(32, 64, 128, 256),
            multiscale_output=True)),
    init_cfg=dict(
        type='Pretrained',
        checkpoint='https://download.openmmlab.com/mmpose/'
        'pretrain_models/hrnet_w32-36af842e.pth'))

# HRNet-W48: HRNet-W32 with 1.5x the channels in every branch
poseur_hrnet_w48 = dict(
    poseur_hrnet_w32,
    extra=dict(
        poseur_hrnet_w32['extra'],
        stage2=dict(poseur_hrnet_w32['extra']['stage2'], num_channels=(48, 96)),
        stage3=dict(poseur_hrnet_w32['extra']['stage3'], num_channels=(48, 96, 192)),
        stage4=dict(poseur_hrnet_w32['extra']['stage4'], num_channels=(48, 96, 192, 384))),
    init_cfg=dict(
        poseur_hrnet_w32['init_cfg'],
        checkpoint='https://download.openmmlab.com/mmpose/'
        'pretrain_models/hrnet_w48-8ef0771d.pth'))

# neck: per backbone level a 1x1 conv + GroupNorm, no activation; a config adds the
# backbone's in_channels
poseur_neck = dict(
    type='ChannelMapper',
    out_channels=256,
    kernel_size=1,
    act_cfg=None,
    norm_cfg=dict(type='GN', num_groups=32),
    num_outs=4)

# head: the published decoder and query denoising; a config adds num_joints and its codec
poseur_head = dict(
    type='PoseurHead',
    in_channels=256,
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
    loss=dict(type='PoseurRLELoss'))  # RLE with Poseur's flow prior

# hooks: check neck and datasets against the head when the run starts; stop on a NaN/inf loss
# before it is checkpointed
poseur_custom_hooks = [dict(type='PoseurCheckHook'), dict(type='NonFiniteLossHook')]
