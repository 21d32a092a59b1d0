# Poseur, HRNet-W32, COCO-WholeBody 256x192 (133 keypoints): the ResNet-50 whole-body config
# with the backbone and neck of the COCO HRNet-W32 config.
_base_ = ['./td-reg_res50_poseur-8xb32-325e_coco-wholebody-256x192.py']

model = dict(
    backbone=dict(_base_.poseur_hrnet_w32, _delete_=True),
    neck=dict(in_channels=[32, 64, 128, 256]))
