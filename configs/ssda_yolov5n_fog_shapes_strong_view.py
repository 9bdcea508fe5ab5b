# The demo's SSDA-YOLO run (ssda_yolov5n_fog_shapes.py) with a weak view for
# the teacher and a strong view for the student. The
# student's target-real image gets photometric augmentation on top of the
# paired pipeline; the teacher's target-fake keeps the weak (paired) view,
# and pseudo-boxes still fit because StrongView lets no transform move a
# pixel or a box. Source pairs are untouched.
_base_ = './ssda_yolov5n_fog_shapes.py'

# Unbiased Teacher's strong augmentation (colour jitter, grayscale, blur,
# three random erasings), drawn from numpy's generator (SeededAlbu), so it is
# reproducible under `randomness.seed` and restored on resume.
strong_view = [
    dict(
        type='SeededAlbu',
        transforms=[
            dict(type='ColorJitter', brightness=0.4, contrast=0.4,
                 saturation=0.4, hue=0.1, p=0.8),
            dict(type='ToGray', method='average', p=0.2),
            dict(type='GaussianBlur', sigma_limit=(0.1, 2.0), p=0.5),
            dict(type='Erasing', scale=(0.05, 0.2), ratio=(0.3, 3.3),
                 fill='random', p=0.7),
            dict(type='Erasing', scale=(0.02, 0.2), ratio=(0.1, 6.0),
                 fill='random', p=0.5),
            dict(type='Erasing', scale=(0.02, 0.2), ratio=(0.05, 8.0),
                 fill='random', p=0.3)
        ]),
    # MIC-style masking (Hoyer et al., CVPR 2023), with or instead of the
    # erasings; blocks of 32 px at 640 px, so 16 px at 192:
    # dict(type='RandomBlockMask', block_size=16, mask_ratio=0.5, prob=0.5)
]

# After every geometric transform: right before the packing (the last step).
target_train_pipeline = [
    *_base_.train_pipeline[:-1],
    dict(type='StrongView', transforms=strong_view),
    _base_.train_pipeline[-1]
]
train_dataloader = dict(
    dataset=dict(datasets=[
        _base_.source_train_dataset,
        dict(_base_.target_train_dataset, pipeline=target_train_pipeline)
    ]))
