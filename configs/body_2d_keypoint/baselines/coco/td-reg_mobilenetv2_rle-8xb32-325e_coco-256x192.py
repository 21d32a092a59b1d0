# RLE, MobileNetV2, COCO 256x192: pairs with both Poseur MobileNetV2 configs. MMPose's
# MobileNetV2 RLE config is its ResNet-50 one with this backbone, started from MMPose's COCO
# heatmap model; this is the ResNet-50 baseline with the backbone started from ImageNet, as
# Poseur's is.
_base_ = ['./td-reg_res50_rle-8xb32-325e_coco-256x192.py']

model = dict(
    backbone=dict(_base_.poseur_mobilenetv2, _delete_=True, out_indices=(7, )),  # stride 32
    head=dict(in_channels=1280))
