"""tools/install.sh's fast path: it does nothing only when this checkout's
mmssda is the one Python imports."""
import os.path as osp
import subprocess
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
INSTALL = osp.join(REPO, 'tools', 'install.sh')


def stack_ok(root: str, cwd: str, stack: str = None) -> bool:
    """install.sh's ``stack_ok`` for the checkout ``root``, run in
    ``cwd``, against the requirements file ``stack`` (default: ours)."""
    stack = stack or osp.join(REPO, 'requirements', 'stack.txt')
    script = (f"source <(sed -n '/^stack_ok() {{/,/^}}/p' '{INSTALL}')\n"
              f"ROOT='{root}' STACK='{stack}' "
              f"WITH_TESTS=0 PY='{sys.executable}'\n"
              'stack_ok')
    return subprocess.run(['bash', '-c', script], cwd=cwd,
                          timeout=120).returncode == 0


def installed_root(cwd) -> str:
    """The installed mmssda's checkout, as a script outside any checkout
    sees it."""
    return subprocess.run(
        [sys.executable, '-c', 'import os, mmssda; print(os.path.dirname('
         'os.path.dirname(os.path.realpath(mmssda.__file__))))'],
        cwd=str(cwd), capture_output=True, text=True, check=True,
        timeout=120).stdout.strip()


def test_a_checkout_in_the_current_folder_is_not_the_installed_one(
        tmp_path):
    root = installed_root(tmp_path)
    # another checkout, here in the current folder: `python -` would import
    # its mmssda, but tools/demo.py and tools/train.py import the installed
    # one
    other = tmp_path / 'other_checkout'
    (other / 'mmssda').mkdir(parents=True)
    (other / 'mmssda' / '__init__.py').write_text('')
    assert not stack_ok(str(other), cwd=str(other))
    # the checkout that is installed passes, from any folder
    assert stack_ok(root, cwd=str(other))


def test_every_stack_line_is_checked(tmp_path):
    # not only the == pins: a range the environment does not meet (e.g.
    # OpenCV 5 against opencv-python<5) makes install.sh install
    root = installed_root(tmp_path)
    ours = open(osp.join(REPO, 'requirements', 'stack.txt')).read()
    assert 'opencv-python>=4.9,<5' in ours
    assert stack_ok(root, cwd=str(tmp_path))
    stack = tmp_path / 'stack.txt'
    stack.write_text(
        ours.replace('opencv-python>=4.9,<5', 'opencv-python>=99'))
    assert not stack_ok(root, cwd=str(tmp_path), stack=str(stack))
    stack.write_text(ours + 'numpy<1\n')
    assert not stack_ok(root, cwd=str(tmp_path), stack=str(stack))
