"""Fixtures of the teacher-and-student evaluation loop tests."""
import pytest

from tests.conftest import make_coco_shapes
from tests.test_models.utils import boost_scores, build_ssda
from tests.training_helpers import omit_config_text

# Class scores (logits) that make a detector call everything a square or a
# disc.
SQUARE, DISC = (8., -8.), (-8., 8.)


@pytest.fixture
def cheap_config_text(monkeypatch):
    omit_config_text(monkeypatch)


@pytest.fixture(scope='module')
def shapes_root(tmp_path_factory):
    """Six COCO shapes images (batch size 2: three batches)."""
    root = str(tmp_path_factory.mktemp('shapes'))
    make_coco_shapes(root, num_images=6, seed=3)
    return root


@pytest.fixture
def square_teacher_disc_student():
    """An SSDA model in eval mode whose teacher finds squares only and
    whose student finds discs only."""
    model = build_ssda(seed=0)
    boost_scores(model.teacher, cls=SQUARE)
    boost_scores(model.student, cls=DISC)
    model.eval()
    return model
