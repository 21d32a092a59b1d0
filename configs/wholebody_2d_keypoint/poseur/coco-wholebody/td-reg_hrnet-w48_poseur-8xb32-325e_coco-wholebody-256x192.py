# Poseur, HRNet-W48, COCO-WholeBody 256x192 (133 keypoints).
_base_ = ['./td-reg_hrnet-w32_poseur-8xb32-325e_coco-wholebody-256x192.py']

model = dict(
    backbone=dict(_base_.poseur_hrnet_w48, _delete_=True),
    neck=dict(in_channels=[48, 96, 192, 384]))
