from .fog_shapes import generate_fog_shapes
from .shapes_scene import FOG_SHAPES_CLASSES, render_shapes_scene

__all__ = ['generate_fog_shapes', 'render_shapes_scene', 'FOG_SHAPES_CLASSES']
