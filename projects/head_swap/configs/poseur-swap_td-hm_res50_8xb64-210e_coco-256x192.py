# Head swap: MMPose's SimpleBaseline ResNet-50 (heatmap) config turned into a Poseur model,
# with the backbone initialised from that model's COCO-trained checkpoint. Data, augmentation,
# optimizer and schedule stay MMPose's.
_base_ = [
    'mmpose::body_2d_keypoint/topdown_heatmap/coco/'
    'td-hm_res50_8xb64-210e_coco-256x192.py',
    '../../../configs/_base_/poseur.py'
]

custom_imports = dict(imports=['poseur_mm'], allow_failed_imports=False)

# --- the swap ---
codec = dict(type='RegressionLabel', input_size=_base_.codec.input_size)

model = dict(
    backbone=dict(
        out_indices=(0, 1, 2, 3),  # all four stages: strides 4, 8, 16, 32
        init_cfg=dict(
            type='Pretrained',
            prefix='backbone.',  # the trained pose model's backbone weights only
            checkpoint='https://download.openmmlab.com/mmpose/v1/body_2d_keypoint/'
            'topdown_heatmap/coco/td-hm_res50_8xb64-210e_coco-256x192-04af38ce_20220923.pth')),
    neck=dict(_base_.poseur_neck, in_channels=[256, 512, 1024, 2048]),
    head=dict(_delete_=True, type='PoseurHead', in_channels=256, num_joints=17, decoder=codec),
    test_cfg=dict(_delete_=True, flip_test=True, shift_coords=True))

# regression targets in place of heatmaps
train_pipeline = [
    dict(t, encoder=codec) if t.type == 'GenerateTarget' else t for t in _base_.train_pipeline
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

# the deformable attention's sampling offsets learn at 0.1x the base lr
optim_wrapper = dict(paramwise_cfg=_base_.poseur_paramwise_cfg)

# rescore with the keypoint uncertainty scores
val_evaluator = dict(score_mode='bbox_rle')
test_evaluator = val_evaluator

# the top-level codec replaces, not merges into, the base's (the uses above keep this dict)
codec = dict(codec, _delete_=True)

# check neck and datasets against the swapped-in head when the run starts
custom_hooks = [dict(type='SyncBuffersHook'), *_base_.poseur_custom_hooks]
