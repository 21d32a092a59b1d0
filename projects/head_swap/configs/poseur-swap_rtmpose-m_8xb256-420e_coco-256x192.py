# Head swap: MMPose's RTMPose-m (CSPNeXt-m + SimCC) config turned into a Poseur model, with the
# backbone initialised from that model's COCO-trained checkpoint. Data, augmentation (both
# pipeline stages), optimizer, schedule and EMA stay RTMPose's.
_base_ = [
    'mmpose::body_2d_keypoint/rtmpose/coco/rtmpose-m_8xb256-420e_coco-256x192.py',
    '../../../configs/_base_/poseur.py'
]

custom_imports = dict(imports=['poseur_mm'], allow_failed_imports=False)

# --- the swap ---
codec = dict(type='RegressionLabel', input_size=_base_.codec.input_size)

model = dict(
    backbone=dict(
        out_indices=(1, 2, 3, 4),  # all four stages: strides 4, 8, 16, 32
        init_cfg=dict(
            prefix='backbone.',  # the trained pose model's backbone weights only
            checkpoint='https://download.openmmlab.com/mmpose/v1/projects/rtmposev1/'
            'rtmpose-m_simcc-coco_pt-aic-coco_420e-256x192-d8dd5ca4_20230127.pth')),
    neck=dict(_base_.poseur_neck, in_channels=[96, 192, 384, 768]),
    head=dict(_delete_=True, type='PoseurHead', in_channels=256, num_joints=17, decoder=codec))


# regression targets in place of SimCC labels, in both training stages
def _regression_targets(pipeline):
    return [dict(t, encoder=codec) if t.type == 'GenerateTarget' else t for t in pipeline]


train_pipeline = _regression_targets(_base_.train_pipeline)
train_pipeline_stage2 = _regression_targets(_base_.train_pipeline_stage2)
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
custom_hooks = [
    dict(h, switch_pipeline=train_pipeline_stage2) if h.type == 'mmdet.PipelineSwitchHook' else h
    for h in _base_.custom_hooks
] + _base_.poseur_custom_hooks

# the deformable attention's sampling offsets learn at 0.1x the base lr
optim_wrapper = dict(paramwise_cfg=_base_.poseur_paramwise_cfg)

# rescore with the keypoint uncertainty scores
val_evaluator = dict(score_mode='bbox_rle')
test_evaluator = val_evaluator

# the top-level codec replaces, not merges into, the base's (the uses above keep this dict)
codec = dict(codec, _delete_=True)
