# A small Poseur for the inference and export tests: the shipped COCO config (its dataset,
# pipelines and metadata) with a ResNet-18 from scratch, a 2-layer decoder and 128x96 crops.
_base_ = [
    '../../configs/body_2d_keypoint/poseur/coco/'
    'td-reg_res50_poseur-8xb32-325e_coco-256x192.py'
]

# codec settings
codec = dict(type='RegressionLabel', input_size=(96, 128))

# model settings
model = dict(
    backbone=dict(_delete_=True, type='ResNet', depth=18, out_indices=(0, 1, 2, 3)),
    neck=dict(in_channels=[64, 128, 256, 512]),  # ChannelMapper, 256 channels, GN(32)
    head=dict(query_decoder=dict(num_layers=2), decoder=codec))

# the MMPose test images
data_root = '{{ fileDirname }}/coco/'

# pipelines
train_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='TopdownAffine', input_size=codec['input_size']),
    dict(type='GenerateTarget', encoder=codec),
    dict(type='PackPoseInputs')
]
val_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale'),
    dict(type='TopdownAffine', input_size=codec['input_size']),
    dict(type='PackPoseInputs')
]

# data loaders
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root, ann_file='test_coco.json', data_prefix=dict(img=''),
        pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root, ann_file='test_coco.json', data_prefix=dict(img=''),
        bbox_file=None, pipeline=val_pipeline))
test_dataloader = val_dataloader

# evaluators
val_evaluator = dict(ann_file=data_root + 'test_coco.json')
test_evaluator = val_evaluator
