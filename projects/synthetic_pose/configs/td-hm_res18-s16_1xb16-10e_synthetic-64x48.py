# Heatmap baseline paired with td-reg_res18_poseur-1xb16-10e_synthetic-64x48.py: it inherits
# that config (set, ResNet-18 from scratch, 64x48 crops, AdamW schedule, augmentation, loaders)
# and replaces only the head, the codec and the evaluation, with MMPose's SimpleBaseline ones.
# At 64x48 ResNet-18's stride-32 map is 2x2 (48 / 32 rounds up), which three deconvs turn
# into 16x16, not the 16x12 heatmap; so the head reads the stride-16 map (4x3) of the first
# three stages and upsamples it with two deconvs to 16x12 (stride 4, as SimpleBaseline).
_base_ = ['./td-reg_res18_poseur-1xb16-10e_synthetic-64x48.py']

# codec settings (every key of the base's RegressionLabel codec is replaced)
codec = dict(type='MSRAHeatmap', input_size=(48, 64), heatmap_size=(12, 16), sigma=2)

# model settings
model = dict(
    # ResNet-18 from scratch, stages 1-3 (stride 16)
    backbone=dict(num_stages=3, strides=(1, 2, 2), dilations=(1, 1, 1), out_indices=(2, )),
    neck=None,
    head=dict(
        _delete_=True,
        type='HeatmapHead',
        in_channels=256,
        out_channels=17,
        deconv_out_channels=(256, 256),
        deconv_kernel_sizes=(4, 4),
        loss=dict(type='KeypointMSELoss', use_target_weight=True),
        decoder=codec),
    test_cfg=dict(_delete_=True, flip_test=True, flip_mode='heatmap', shift_heatmap=True))

# heatmap targets in the training pipeline
train_pipeline = [
    dict(t, encoder=codec) if t['type'] == 'GenerateTarget' else t
    for t in _base_.train_pipeline
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

# evaluators: MMPose's default instance score (bbox score x mean keypoint score)
val_evaluator = dict(_delete_=True, type='CocoMetric', ann_file=_base_.val_evaluator.ann_file)
test_evaluator = val_evaluator

# MMPose's default runtime hooks only, as in the heatmap configs
custom_hooks = [dict(type='SyncBuffersHook')]
