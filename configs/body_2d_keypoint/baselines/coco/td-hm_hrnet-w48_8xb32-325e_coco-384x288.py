# HRNet-W48 (heatmap), COCO 384x288: pairs with Poseur HRNet-W48.
_base_ = [
    'mmpose::body_2d_keypoint/topdown_heatmap/coco/'
    'td-hm_hrnet-w48_8xb32-210e_coco-384x288.py',
    '../../../_base_/poseur.py'
]

# Poseur's batch, schedule and SyncBN (configs/_base_/poseur.py), so that only the head (with
# its codec, loss and optimizer) differs from the paired Poseur config
train_cfg = _base_.poseur_train_cfg
sync_bn = _base_.poseur_sync_bn
param_scheduler = _base_.poseur_param_scheduler
auto_scale_lr = _base_.poseur_auto_scale_lr

# photometric distortion after the affine crop, as in Poseur's HRNet-W48 config
train_pipeline = _base_.train_pipeline[:-2] + [dict(type='PhotometricDistortion')
                                               ] + _base_.train_pipeline[-2:]
train_dataloader = dict(_base_.poseur_train_dataloader, dataset=dict(pipeline=train_pipeline))
