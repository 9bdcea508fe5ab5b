import os.path as osp

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_version():
    scope = {}
    with open(osp.join(HERE, 'mmssda', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def read_requirements(name):
    """Requirements of ``requirements/<name>.txt`` without comments.

    torch and mmcv are left to ``tools/install.sh``: a user's CUDA torch must
    not be replaced, and mmcv needs its compiled ops built against that torch,
    which pip's build isolation cannot do.
    """
    reqs = []
    with open(osp.join(HERE, 'requirements', f'{name}.txt')) as f:
        for line in f:
            line = line.split('#')[0].strip()
            if line and not line.startswith(('torch', 'mmcv')):
                reqs.append(line)
    return reqs


setup(
    name='mmssda',
    version=read_version(),
    description='Semi-supervised domain-adaptive YOLO (SSDA-YOLO) as an '
    'OpenMMLab (MMYOLO/MMDetection) plugin',
    long_description=open(osp.join(HERE, 'README.md')).read()
    if osp.exists(osp.join(HERE, 'README.md')) else '',
    long_description_content_type='text/markdown',
    license='GPL-3.0',
    classifiers=[
        'License :: OSI Approved :: GNU General Public License v3 (GPLv3)',
        'Programming Language :: Python :: 3',
        'Topic :: Scientific/Engineering :: Artificial Intelligence',
    ],
    python_requires='>=3.8',
    packages=find_packages(exclude=('configs', 'tools', 'tests')),
    include_package_data=True,
    install_requires=read_requirements('stack'),
    extras_require=dict(tests=read_requirements('tests')),
    zip_safe=False)
