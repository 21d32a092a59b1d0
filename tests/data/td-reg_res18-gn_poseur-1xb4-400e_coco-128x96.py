# The overfit check of the recipe: the tiny COCO config with a GroupNorm ResNet-18 and a
# 6-layer decoder fitted to the 12 people of MMPose's four COCO test images for 1,200
# iterations (batch 4, AdamW 1e-3, cosine). A recipe that trains should reach AP >= 0.9 on
# them with and without flip test (docs/recipe.md has the numbers).
_base_ = ['td-reg_res18_poseur-1xb2-2e_coco-128x96.py']

# runtime
train_cfg = dict(max_epochs=400, val_interval=400)

# optimizer
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=1e-3, weight_decay=1e-4),
    clip_grad=dict(max_norm=1.0))

# learning policy
param_scheduler = [
    dict(type='LinearLR', begin=0, end=30, start_factor=0.001, by_epoch=False),  # warm-up
    dict(type='CosineAnnealingLR', begin=0, end=400, eta_min=1e-5, by_epoch=True)
]

# model settings: GroupNorm instead of BatchNorm (4 crops a batch), the published decoder
model = dict(
    backbone=dict(norm_cfg=dict(type='GN', num_groups=32)),
    head=dict(query_decoder=dict(num_layers=6)))

# data loaders
train_dataloader = dict(batch_size=4)

# hooks
default_hooks = dict(logger=dict(interval=50), checkpoint=dict(interval=-1, save_last=True))
