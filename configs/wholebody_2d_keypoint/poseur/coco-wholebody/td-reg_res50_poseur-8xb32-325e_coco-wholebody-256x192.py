# Poseur, ResNet-50, COCO-WholeBody 256x192 (133 keypoints): the COCO recipe and augmentation
# on the whole-body annotations, evaluated as MMPose's whole-body configs do.
_base_ = ['../../../body_2d_keypoint/poseur/coco/td-reg_res50_poseur-8xb32-325e_coco-256x192.py']

model = dict(head=dict(num_joints=133))

# data loaders
train_dataloader = dict(
    dataset=dict(
        type='CocoWholeBodyDataset', ann_file='annotations/coco_wholebody_train_v1.0.json'))
val_dataloader = dict(
    dataset=dict(type='CocoWholeBodyDataset', ann_file='annotations/coco_wholebody_val_v1.0.json'))
test_dataloader = val_dataloader

# hooks
default_hooks = dict(checkpoint=dict(save_best='coco-wholebody/AP'))

# evaluators
val_evaluator = dict(
    type='CocoWholeBodyMetric', ann_file='data/coco/annotations/coco_wholebody_val_v1.0.json')
test_evaluator = val_evaluator
