"""tools/install.sh's fast path: it does nothing only when this checkout's
mmssda is the one Python imports."""
import os.path as osp
import subprocess
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
INSTALL = osp.join(REPO, 'tools', 'install.sh')


def stack_ok(root: str, cwd: str) -> bool:
    """install.sh's ``stack_ok`` for the checkout ``root``, run in
    ``cwd``."""
    script = (f"source <(sed -n '/^stack_ok() {{/,/^}}/p' '{INSTALL}')\n"
              f"ROOT='{root}' STACK='{REPO}/requirements/stack.txt' "
              f"WITH_TESTS=0 PY='{sys.executable}'\n"
              'stack_ok')
    return subprocess.run(['bash', '-c', script], cwd=cwd,
                          timeout=120).returncode == 0


def test_a_checkout_in_the_current_folder_is_not_the_installed_one(
        tmp_path):
    # the installed mmssda, as a script outside any checkout sees it
    installed_root = subprocess.run(
        [sys.executable, '-c', 'import os, mmssda; print(os.path.dirname('
         'os.path.dirname(os.path.realpath(mmssda.__file__))))'],
        cwd=str(tmp_path), capture_output=True, text=True, check=True,
        timeout=120).stdout.strip()
    # another checkout, here in the current folder: `python -` would import
    # its mmssda, but tools/demo.py and tools/train.py import the installed
    # one
    other = tmp_path / 'other_checkout'
    (other / 'mmssda').mkdir(parents=True)
    (other / 'mmssda' / '__init__.py').write_text('')
    assert not stack_ok(str(other), cwd=str(other))
    # the checkout that is installed passes, from any folder
    assert stack_ok(installed_root, cwd=str(other))
