# Poseur, HRNet-W48, COCO-WholeBody 256x192 (133 keypoints).
_base_ = ['./td-reg_hrnet-w32_poseur-8xb32-325e_coco-wholebody-256x192.py']

model = dict(
    backbone=dict(
        extra=dict(
            stage2=dict(num_channels=(48, 96)),
            stage3=dict(num_channels=(48, 96, 192)),
            stage4=dict(num_channels=(48, 96, 192, 384))),
        init_cfg=dict(checkpoint='https://download.openmmlab.com/mmpose/'
                      'pretrain_models/hrnet_w48-8ef0771d.pth')),
    neck=dict(in_channels=[48, 96, 192, 384]))
