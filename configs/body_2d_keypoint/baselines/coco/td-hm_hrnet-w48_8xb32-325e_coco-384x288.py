# HRNet-W48 (heatmap), COCO 384x288: pairs with Poseur HRNet-W48.
_base_ = [
    'mmpose::body_2d_keypoint/topdown_heatmap/coco/'
    'td-hm_hrnet-w48_8xb32-210e_coco-384x288.py'
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

# photometric distortion after the affine crop, as in Poseur's HRNet-W48 config
train_pipeline = _base_.train_pipeline[:-2] + [dict(type='PhotometricDistortion')
                                               ] + _base_.train_pipeline[-2:]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
