# Poseur on the synthetic set with the published decoder (256 channels, 6 layers, 8 heads,
# FFN 1024) instead of the 64-channel 3-layer one. At 128x96 its neck and head cost
# 163 MFLOPs, less than the paired heatmap head's 256 MFLOPs (docs/recipe.md).
_base_ = ['./td-reg_res18_poseur-1xb16-10e_synthetic-64x48.py']

embed_dims = 256

# model settings
model = dict(
    neck=dict(out_channels=embed_dims),
    head=dict(
        in_channels=embed_dims,
        embed_dims=embed_dims,
        query_decoder=dict(
            num_layers=6, layer_cfg=dict(num_heads=8, num_points=4, ffn_dims=4 * embed_dims))))
