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

# pipelines: flips and +-2 crop px translations; a model that memorises its images
# without translations loses AP on the test-time flip, a 1-px move of the training flip
# (docs/flip_test.md)
train_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='RandomFlip', direction='horizontal'),
    dict(type='RandomBBoxTransform', shift_factor=0.02, shift_prob=1., scale_prob=0.,
         rotate_prob=0.),
    dict(type='TopdownAffine', input_size=(96, 128)),
    dict(type='GenerateTarget', encoder=dict(type='RegressionLabel', input_size=(96, 128))),
    dict(type='PackPoseInputs')
]

# data loaders
train_dataloader = dict(batch_size=4, dataset=dict(pipeline=train_pipeline))

# hooks
default_hooks = dict(logger=dict(interval=50), checkpoint=dict(interval=-1, save_last=True))
