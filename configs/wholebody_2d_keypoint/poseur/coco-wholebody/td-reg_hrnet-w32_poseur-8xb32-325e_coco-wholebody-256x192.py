# Poseur, HRNet-W32, COCO-WholeBody 256x192 (133 keypoints).
_base_ = [
    '../../../body_2d_keypoint/poseur/coco/td-reg_hrnet-w32_poseur-8xb32-325e_coco-256x192.py'
]

# the release's whole-body recipe: one noisy group of 20 perturbed points (its config's
# num_noise_point=20), and a bbox centre shift (uniform +-0.16 of the box, p 0.3; MMPose's
# RandomBBoxTransform default is the truncated-normal counterpart)
model = dict(head=dict(num_joints=133, num_noise_groups=1, noisy_points_per_group=20))

# pipelines
codec = dict(type='RegressionLabel', input_size=(192, 256))
train_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='RandomFlip', direction='horizontal'),
    dict(type='RandomHalfBody'),
    dict(type='RandomBBoxTransform'),
    dict(type='TopdownAffine', input_size=codec['input_size']),
    dict(type='GenerateTarget', encoder=codec),
    dict(type='PackPoseInputs')
]

# data loaders
train_dataloader = dict(
    dataset=dict(
        type='CocoWholeBodyDataset', ann_file='annotations/coco_wholebody_train_v1.0.json',
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(type='CocoWholeBodyDataset', ann_file='annotations/coco_wholebody_val_v1.0.json'))
test_dataloader = val_dataloader

# hooks
default_hooks = dict(checkpoint=dict(save_best='coco-wholebody/AP'))

# evaluators
val_evaluator = dict(
    type='CocoWholeBodyMetric', ann_file='data/coco/annotations/coco_wholebody_val_v1.0.json')
test_evaluator = val_evaluator
