# Poseur, MobileNetV2 (ImageNet-pretrained, as MMPose's heatmap config loads it), COCO 256x192.
_base_ = ['./td-reg_res50_poseur-8xb32-325e_coco-256x192.py']

model = dict(
    backbone=dict(
        _delete_=True,
        type='MobileNetV2',
        widen_factor=1.,
        out_indices=(1, 2, 4, 7),  # strides 4, 8, 16, 32
        init_cfg=dict(type='Pretrained', checkpoint='mmcls://mobilenet_v2')),
    neck=dict(in_channels=[24, 32, 96, 1280]))
