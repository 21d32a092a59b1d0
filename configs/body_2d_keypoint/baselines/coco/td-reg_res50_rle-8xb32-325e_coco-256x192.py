# RLE, ResNet-50, COCO 256x192: pairs with Poseur ResNet-50.
_base_ = [
    'mmpose::body_2d_keypoint/topdown_regression/coco/'
    'td-reg_res50_rle-8xb64-210e_coco-256x192.py',
    '../../../_base_/poseur.py'
]

# Poseur's batch, schedule and SyncBN (configs/_base_/poseur.py), so that only the head (with
# its codec, loss and optimizer) differs from the paired Poseur config
train_cfg = _base_.poseur_train_cfg
sync_bn = _base_.poseur_sync_bn
param_scheduler = _base_.poseur_param_scheduler
auto_scale_lr = _base_.poseur_auto_scale_lr
train_dataloader = _base_.poseur_train_dataloader
