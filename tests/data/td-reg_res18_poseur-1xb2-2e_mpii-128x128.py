# The tiny Poseur of td-reg_res18_poseur-1xb2-2e_coco-128x96.py on MMPose's MPII test images,
# at 128x128, for the `mim train` / `mim test` checks. The test annotations have no head boxes
# (mpii_gt_val.mat), so PCK is normalised by the box instead of the head (PCKh).
_base_ = ['td-reg_res18_poseur-1xb2-2e_coco-128x96.py']

# codec settings
codec = dict(type='RegressionLabel', input_size=(128, 128))

# model settings
model = dict(head=dict(num_joints=16, decoder=codec))

# base dataset settings
dataset_type = 'MpiiDataset'
data_root = '{{ fileDirname }}/mpii/'


# pipelines: the COCO config's at this input size
def _resized(pipeline):
    return [
        dict(t, input_size=codec['input_size']) if t.type == 'TopdownAffine' else
        dict(t, encoder=codec) if t.type == 'GenerateTarget' else t for t in pipeline
    ]


train_pipeline = _resized(_base_.train_pipeline)
val_pipeline = _resized(_base_.val_pipeline)

# data loaders: MPII's test annotations, ground-truth boxes in validation
train_dataloader = dict(
    dataset=dict(
        type=dataset_type, data_root=data_root, ann_file='test_mpii.json',
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type, data_root=data_root, ann_file='test_mpii.json', headbox_file=None,
        pipeline=val_pipeline))
test_dataloader = val_dataloader

# hooks
default_hooks = dict(checkpoint=dict(save_best='PCK'))

# evaluators: PCK@0.5 of the box size
val_evaluator = dict(_delete_=True, type='PCKAccuracy', thr=0.5, norm_item='bbox')
test_evaluator = val_evaluator
