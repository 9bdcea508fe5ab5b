"""mmssda's registry nodes.

Each node is a child of the matching MMYOLO node, so a config whose
``default_scope`` is ``'mmssda'`` resolves, in order: mmssda's own types,
then MMYOLO's unscoped types (``'YOLODetector'``), then MMEngine's. MMDetection
types are reached with their scope prefix (``'mmdet.RandomFlip'``).
"""
from mmengine.registry import Registry
from mmyolo.registry import DATA_SAMPLERS as MMYOLO_DATA_SAMPLERS
from mmyolo.registry import DATASETS as MMYOLO_DATASETS
from mmyolo.registry import HOOKS as MMYOLO_HOOKS
from mmyolo.registry import LOOPS as MMYOLO_LOOPS
from mmyolo.registry import METRICS as MMYOLO_METRICS
from mmyolo.registry import MODEL_WRAPPERS as MMYOLO_MODEL_WRAPPERS
from mmyolo.registry import MODELS as MMYOLO_MODELS
from mmyolo.registry import \
    OPTIM_WRAPPER_CONSTRUCTORS as MMYOLO_OPTIM_WRAPPER_CONSTRUCTORS
from mmyolo.registry import OPTIM_WRAPPERS as MMYOLO_OPTIM_WRAPPERS
from mmyolo.registry import OPTIMIZERS as MMYOLO_OPTIMIZERS
from mmyolo.registry import PARAM_SCHEDULERS as MMYOLO_PARAM_SCHEDULERS
from mmyolo.registry import RUNNERS as MMYOLO_RUNNERS
from mmyolo.registry import TASK_UTILS as MMYOLO_TASK_UTILS
from mmyolo.registry import TRANSFORMS as MMYOLO_TRANSFORMS
from mmyolo.registry import VISBACKENDS as MMYOLO_VISBACKENDS
from mmyolo.registry import VISUALIZERS as MMYOLO_VISUALIZERS

RUNNERS = Registry('runner', parent=MMYOLO_RUNNERS, scope='mmssda')
LOOPS = Registry(
    'loop', parent=MMYOLO_LOOPS, scope='mmssda',
    locations=['mmssda.engine'])
HOOKS = Registry(
    'hook', parent=MMYOLO_HOOKS, scope='mmssda',
    locations=['mmssda.engine.hooks'])

DATASETS = Registry(
    'dataset', parent=MMYOLO_DATASETS, scope='mmssda',
    locations=['mmssda.datasets'])
DATA_SAMPLERS = Registry(
    'data sampler', parent=MMYOLO_DATA_SAMPLERS, scope='mmssda',
    locations=['mmssda.datasets.samplers'])
TRANSFORMS = Registry(
    'transform', parent=MMYOLO_TRANSFORMS, scope='mmssda',
    locations=['mmssda.datasets.transforms'])

MODELS = Registry(
    'model', parent=MMYOLO_MODELS, scope='mmssda',
    locations=['mmssda.models'])
MODEL_WRAPPERS = Registry(
    'model_wrapper', parent=MMYOLO_MODEL_WRAPPERS, scope='mmssda',
    locations=['mmssda.models'])
TASK_UTILS = Registry(
    'task util', parent=MMYOLO_TASK_UTILS, scope='mmssda',
    locations=['mmssda.models'])

OPTIMIZERS = Registry(
    'optimizer', parent=MMYOLO_OPTIMIZERS, scope='mmssda',
    locations=['mmssda.engine.optimizers'])
OPTIM_WRAPPERS = Registry(
    'optim_wrapper', parent=MMYOLO_OPTIM_WRAPPERS, scope='mmssda',
    locations=['mmssda.engine.optimizers'])
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer wrapper constructor',
    parent=MMYOLO_OPTIM_WRAPPER_CONSTRUCTORS, scope='mmssda',
    locations=['mmssda.engine.optimizers'])
PARAM_SCHEDULERS = Registry(
    'parameter scheduler', parent=MMYOLO_PARAM_SCHEDULERS, scope='mmssda',
    locations=['mmssda.engine.optimizers'])

METRICS = Registry(
    'metric', parent=MMYOLO_METRICS, scope='mmssda')
VISUALIZERS = Registry(
    'visualizer', parent=MMYOLO_VISUALIZERS, scope='mmssda')
VISBACKENDS = Registry(
    'vis_backend', parent=MMYOLO_VISBACKENDS, scope='mmssda')
