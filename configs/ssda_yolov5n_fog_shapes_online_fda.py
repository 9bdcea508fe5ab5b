# SSDA-YOLO on the built-in clear -> fog benchmark without fake image files:
# every fake is made from its real image when the image is loaded (for the
# sample and for its mosaic partners, before any augmentation, so the pair
# shares all geometry) by Fourier domain adaptation with a random image of
# the other domain. The window sizes are those of the generator's offline
# fakes (source -> fog 0.02, target -> clear 0.01), so this run differs from
# configs/ssda_yolov5n_fog_shapes.py only in drawing a new reference image
# each time an image is loaded.
_base_ = './ssda_yolov5n_fog_shapes.py'

source_fda_beta = 0.02
target_fda_beta = 0.01

source_train_dataset = dict(
    _base_.source_train_dataset,
    fake_root=None,
    fake_pipeline=[
        dict(
            type='FDAStyleTransfer',
            ref_path=_base_.data_root + 'target/images/',
            beta=source_fda_beta)
    ])
target_train_dataset = dict(
    _base_.target_train_dataset,
    fake_root=None,
    fake_pipeline=[
        dict(
            type='FDAStyleTransfer',
            ref_path=_base_.data_root + 'source/images/',
            beta=target_fda_beta)
    ])
train_dataloader = dict(
    dataset=dict(datasets=[source_train_dataset, target_train_dataset]))
