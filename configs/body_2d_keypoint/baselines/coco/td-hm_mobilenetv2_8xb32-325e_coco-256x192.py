# SimpleBaseline (heatmap), MobileNetV2, COCO 256x192: pairs with both Poseur MobileNetV2 configs.
# MMPose's MobileNetV2 heatmap config is its ResNet-50 one with this backbone, so this is the
# ResNet-50 baseline with it.
_base_ = ['./td-hm_res50_8xb32-325e_coco-256x192.py']

model = dict(
    backbone=dict(_base_.poseur_mobilenetv2, _delete_=True, out_indices=(7, )),  # stride 32
    head=dict(in_channels=1280))
