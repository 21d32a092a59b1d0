# Poseur, MobileNetV2 (ImageNet-pretrained, as MMPose's heatmap config loads it), COCO 256x192.
_base_ = ['./td-reg_res50_poseur-8xb32-325e_coco-256x192.py']

model = dict(
    # stages 1, 2, 4 and the final 1x1 conv: strides 4, 8, 16, 32
    backbone=dict(_base_.poseur_mobilenetv2, _delete_=True, out_indices=(1, 2, 4, 7)),
    neck=dict(in_channels=[24, 32, 96, 1280]))
