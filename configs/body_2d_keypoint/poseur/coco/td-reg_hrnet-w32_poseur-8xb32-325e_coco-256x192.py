# Poseur, HRNet-W32 (ImageNet-pretrained, as MMPose's heatmap config loads it), COCO 256x192.
# The backbone is MMPose's HRNet-W32 with all four branches as outputs.
_base_ = ['./td-reg_res50_poseur-8xb32-325e_coco-256x192.py']

model = dict(
    backbone=dict(_base_.poseur_hrnet_w32, _delete_=True),
    neck=dict(in_channels=[32, 64, 128, 256]))
