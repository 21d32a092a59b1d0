# RLE, HRNet-W32, COCO 256x192: pairs with Poseur HRNet-W32. MMPose ships no HRNet RLE config:
# this is the ResNet-50 RLE baseline (MMPose's RLE head and Adam lr) with Poseur's HRNet-W32,
# whose global average pooling the head reads on the stride-32 branch, the features Poseur's
# coarse regression uses.
_base_ = ['./td-reg_res50_rle-8xb32-325e_coco-256x192.py']

model = dict(backbone=dict(_base_.poseur_hrnet_w32, _delete_=True), head=dict(in_channels=256))
