# RLE, ResNet-50, COCO 256x192: pairs with Poseur ResNet-50.
_base_ = [
    'mmpose::body_2d_keypoint/topdown_regression/coco/'
    'td-reg_res50_rle-8xb64-210e_coco-256x192.py'
]

# Poseur's batch, schedule and SyncBN (configs/body_2d_keypoint/poseur/coco/), so that
# only the head (with its codec, loss and optimizer) differs from the paired Poseur config
train_cfg = dict(max_epochs=325)
sync_bn = 'torch'
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
auto_scale_lr = dict(base_batch_size=256)
train_dataloader = dict(batch_size=32)
