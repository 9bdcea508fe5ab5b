"""The commands and configs of README.md and docs/*.md are real.

Every shell code block (fence language ``bash``, ``sh``, ``shell``,
``console`` or none) is parsed into commands; for each ``python <script>``,
``bash <script>``, ``<path>/<script>.sh`` and ``make <target>`` the checker
asserts that the script exists, that its argument parser accepts the
command's arguments (``parse_args(argv)`` of the script, imported in one
subprocess; ``--help`` for a script without one; for a shell script, each
``--flag`` is in its text or in the parser of a tool it calls) and that the
Makefile has the target. Every ``configs/...py`` path named anywhere in the
text must exist and build with ``mmengine.Config.fromfile``; every
``tests/...py`` (and ``tests/...py::test_name``) or ``mmssda/...py`` path
must exist, and so must the file and the heading of every relative link.
A block right after the line ``<!-- readme-check: skip -->`` is not checked
(a command of another code base). The checker itself is tested on a broken
copy.
"""
import glob
import json
import os
import os.path as osp
import re
import shlex
import subprocess
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SHELL_LANGS = {'', 'bash', 'sh', 'shell', 'console', 'zsh'}
SKIP_MARK = '<!-- readme-check: skip -->'
FENCE = re.compile(r'^(?P<indent>\s*)(?P<fence>```+|~~~+)\s*(?P<lang>[\w+-]*)')
CONFIG_PATH = re.compile(r'(?<![\w/.-])configs/[\w./*{},-]*?\.py\b')
SOURCE_PATH = re.compile(
    r'(?<![\w/.-])((?:tests|mmssda)/[\w/.-]+?\.py)(?:::(\w+))?(?![\w/.-])')
ENV_ASSIGN = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*=')
PYTHONS = re.compile(r'^(python[0-9.]*|\$\{?PYTHON\}?)$')
LAUNCHERS = ('torch.distributed.run', 'torch.distributed.launch')
SEPARATORS = {'&&', '||', ';', '|', '&'}
WORKER_TIMEOUT_S = 300
LINK = re.compile(r'\]\((?P<path>[^)#\s]*)(?:#(?P<anchor>[^)\s]*))?\)')


def code_blocks(markdown_text):
    """Yield ``(language, first line number, lines)`` of every fenced block
    that is not marked with :data:`SKIP_MARK`; indented fences (inside list
    items) count, their indent removed."""
    lines = markdown_text.splitlines()
    i = 0
    previous = ''
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            if lines[i].strip():
                previous = lines[i].strip()
            i += 1
            continue
        indent, fence = len(match['indent']), match['fence']
        lang, start, body = match['lang'].lower(), i + 1, []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i][indent:] if lines[i][:indent].strip() == ''
                        else lines[i])
            i += 1
        if previous != SKIP_MARK:
            yield lang, start + 1, body
        previous = ''
        i += 1


def shell_commands(block_lines):
    """Split a shell block into ``(line index, words)`` commands: line
    continuations joined, ``$`` prompts and comments removed, split at
    ``&&``, ``||``, ``;``, ``|`` and ``&``. A line shlex cannot split gives the
    one-word command ``['!<why>']``."""
    logical, current, start = [], '', None
    for index, line in enumerate(block_lines):
        stripped = line.rstrip()
        start = index if start is None else start
        if stripped.endswith('\\'):
            current += stripped[:-1] + ' '
            continue
        logical.append((start, current + stripped))
        current, start = '', None
    if current:
        logical.append((start, current))
    commands = []
    for index, line in logical:
        line = line.strip()
        if line.startswith('$ '):
            line = line[2:]
        if not line or line.startswith('#') or not _looks_like_command(line):
            continue
        try:
            words = shlex.split(line, comments=True)
        except ValueError as exc:
            commands.append((index, [f'!cannot split {line!r}: {exc}']))
            continue
        command = []
        for word in words + [';']:
            if word in SEPARATORS:
                if command:
                    commands.append((index, command))
                command = []
            else:
                command.append(word)
    return commands


def _looks_like_command(line):
    """Whether a line (split at white space) starts, after environment
    assignments, with a command :func:`classify` checks; other lines of a
    block (output, formulas) are not split as shell."""
    words = line.split()
    return not words[0].startswith('!') and classify(words)[0] != 'skip'


def classify(words):
    """What a command runs: ``('python', script, argv)``, ``('shell',
    script, argv)``, ``('make', targets)``, ``('skip',)`` or
    ``('error', message)``."""
    if words[0].startswith('!'):
        return ('error', words[0][1:])
    words = list(words)
    while words and (ENV_ASSIGN.match(words[0])
                     or words[0] in ('time', 'nohup', 'env')):
        words.pop(0)
    if not words:
        return ('skip', )
    head, rest = words[0], words[1:]
    if PYTHONS.match(head) or head == 'torchrun':
        if head == 'torchrun':
            rest = ['-m', LAUNCHERS[0]] + rest
        while rest and rest[0].startswith('-'):
            option = rest.pop(0)
            if option == '-c':
                return ('skip', )
            if option == '-m':
                module = rest.pop(0) if rest else ''
                if module not in LAUNCHERS:
                    return ('skip', )
                scripts = [k for k, w in enumerate(rest) if w.endswith('.py')]
                if not scripts:
                    return ('error', f'{module} without a script')
                rest = rest[scripts[0]:]
                break
        if not rest:
            return ('skip', )
        return ('python', rest[0], rest[1:])
    if head in ('bash', 'sh'):
        while rest and rest[0].startswith('-'):
            rest.pop(0)
        if not rest:
            return ('skip', )
        return ('shell', rest[0], rest[1:])
    if head == 'make':
        return ('make', [w for w in rest
                         if not w.startswith('-') and '=' not in w])
    if '/' in head and not head.startswith(('/', '$', '~')) and (
            head.endswith(('.py', '.sh')) or head.startswith(
                ('./', '.ci/'))):
        kind = 'python' if head.endswith('.py') else 'shell'
        return (kind, head, rest)
    return ('skip', )


def split_optional(argv):
    """``argv`` without its ``[...]`` groups (placeholders of optional
    arguments), and the words of those groups."""
    kept, optional, depth = [], [], 0
    for word in argv:
        opens = word.startswith('[')
        depth += opens
        (optional if depth else kept).append(word.strip('[]'))
        if word.endswith(']') and depth:
            depth -= 1
    return kept, [w for w in optional if w and w != '...']


def flags_of(argv):
    """The ``--flag`` names in ``argv`` (``--a=b`` gives ``--a``)."""
    return [w.split('=')[0] for w in argv
            if w.startswith('--') and len(w) > 2]


def make_targets(root):
    """Targets defined in ``root/Makefile``."""
    path = osp.join(root, 'Makefile')
    if not osp.isfile(path):
        return set()
    with open(path) as f:
        text = f.read()
    return set(re.findall(r'^([A-Za-z0-9_.-]+)\s*:(?!=)', text, re.M))


def called_tools(script_path):
    """Python scripts a shell script runs (``<name>.py`` beside it or
    under tools/)."""
    with open(script_path) as f:
        names = set(re.findall(r'([\w-]+\.py)\b', f.read()))
    root = osp.dirname(osp.dirname(osp.abspath(script_path)))
    found = []
    for name in sorted(names):
        for folder in (osp.dirname(script_path), osp.join(root, 'tools')):
            if osp.isfile(osp.join(folder, name)):
                found.append(osp.relpath(osp.join(folder, name), root))
                break
    return found


def check_source_path(root, path, test_name=None):
    """A problem with ``path`` (a file under tests/ or mmssda/ named in the
    text) and ``path::test_name``, or None."""
    full = osp.join(root, path)
    if not osp.isfile(full):
        return f'{path} does not exist'
    if test_name:
        with open(full) as f:
            if not re.search(rf'^\s*def {test_name}\(', f.read(), re.M):
                return f'{path} has no test {test_name}'
    return None


def heading_anchors(markdown_text):
    """The anchors GitHub gives the headings of a markdown text (lower
    case, punctuation other than ``-`` and ``_`` removed, spaces to
    ``-``), outside code blocks."""
    anchors, in_code = set(), False
    for line in markdown_text.splitlines():
        if FENCE.match(line):
            in_code = not in_code
        elif not in_code and line.startswith('#'):
            title = line.lstrip('#').strip().lower()
            anchors.add(re.sub(r'[^\w\- ]', '', title).replace(' ', '-'))
    return anchors


def check_links(name, text, root):
    """Problems of the relative links of a markdown text named ``name``
    (a path relative to ``root``): the file must exist, and an anchor must
    be a heading of the linked (or this) markdown file."""
    problems = []
    for match in LINK.finditer(text):
        path, anchor = match['path'], match['anchor']
        if re.match(r'^[a-z]+:', path):
            continue
        line = text.count('\n', 0, match.start()) + 1
        target = osp.normpath(osp.join(osp.dirname(name),
                                       path)) if path else name
        full = osp.join(root, target)
        if path and not osp.exists(full):
            problems.append(f'{name}:{line}: link to {target}, which does '
                            'not exist')
            continue
        if anchor is None or (path and not path.endswith('.md')):
            continue
        if path:
            with open(full) as f:
                linked = f.read()
        else:
            linked = text
        if anchor not in heading_anchors(linked):
            problems.append(f'{name}:{line}: link to {target}#'
                            f'{anchor}, which has no such heading')
    return problems


def check_documents(documents, root=REPO):
    """Check the commands and config paths of several markdown texts.

    Args:
        documents (dict[str, str]): Markdown text by name (the name starts
            each problem).
        root (str): The repository the commands run in.

    Returns:
        list[str]: One line per problem; empty when everything is right.
    """
    problems, parses, option_requests, configs = [], [], {}, {}
    targets = make_targets(root)
    for name, text in documents.items():
        for match in CONFIG_PATH.finditer(text):
            line = text.count('\n', 0, match.start()) + 1
            configs.setdefault(match.group(0), f'{name}:{line}')
        problems.extend(check_links(name, text, root))
        for match in SOURCE_PATH.finditer(text):
            line = text.count('\n', 0, match.start()) + 1
            problem = check_source_path(root, *match.groups())
            if problem:
                problems.append(f'{name}:{line}: {problem}')
        for lang, first, block in code_blocks(text):
            if lang not in SHELL_LANGS:
                continue
            for index, words in shell_commands(block):
                where = f'{name}:{first + index}: `{" ".join(words)[:70]}`'
                kind = classify(words)
                if kind[0] == 'error':
                    problems.append(f'{where}: {kind[1]}')
                elif kind[0] == 'make':
                    for target in kind[1]:
                        if target not in targets:
                            problems.append(
                                f'{where}: the Makefile has no target '
                                f'{target!r}')
                elif kind[0] in ('python', 'shell'):
                    _, script, argv = kind
                    path = osp.join(root, script)
                    if not osp.isfile(path):
                        problems.append(
                            f'{where}: script {script} does not exist')
                        continue
                    argv, optional = split_optional(argv)
                    if kind[0] == 'python':
                        parses.append((where, script, argv, optional))
                    else:
                        option_requests[where] = (script, path,
                                                  flags_of(argv + optional))
    tools = {script for _, script, _, _ in parses}
    for script, path, _ in option_requests.values():
        tools.update(called_tools(path))
    config_files = {}
    for pattern, where in configs.items():
        matches = sorted(glob.glob(osp.join(root, pattern)))
        if not matches:
            problems.append(f'{where}: config {pattern} does not exist')
        for match in matches:
            config_files.setdefault(osp.relpath(match, root), where)
    report = run_worker(
        root,
        dict(
            tools=sorted(tools),
            parses=[(script, argv, optional)
                    for _, script, argv, optional in parses],
            configs=sorted(config_files)))
    for (where, script, _, _), error in zip(parses, report['parses']):
        if error:
            problems.append(f'{where}: {script} refuses it: {error}')
    for where, (script, path, flags) in option_requests.items():
        with open(path) as f:
            text = f.read()
        known = set(re.findall(r'--[\w-]+', text))
        for tool in called_tools(path):
            known.update(report['options'].get(tool, []))
        for flag in flags:
            if flag not in known:
                problems.append(f'{where}: {script} has no flag {flag} '
                                '(not in its text nor in the tools it runs)')
    for config, error in report['configs'].items():
        if error:
            problems.append(f'{config_files[config]}: config {config} does '
                            f'not build: {error}')
    return problems


def check_commands(markdown_text, source='markdown', root=REPO):
    """The problems of one markdown text (see :func:`check_documents`)."""
    return check_documents({source: markdown_text}, root)


def run_worker(root, request):
    """Run :func:`worker` in a fresh interpreter (one import of the stack
    for all scripts and configs, no state left in the caller)."""
    proc = subprocess.run([sys.executable, osp.abspath(__file__), root],
                          input=json.dumps(request),
                          capture_output=True,
                          text=True,
                          timeout=WORKER_TIMEOUT_S,
                          cwd=root)
    if proc.returncode != 0:
        raise RuntimeError(f'the checker\'s worker failed:\n{proc.stderr}')
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _call_parser(parse_args, script, argv):
    """``(exit status, stdout, stderr)`` of ``parse_args(argv)``, run as
    ``script``."""
    import contextlib
    import io
    out, err = io.StringIO(), io.StringIO()
    status = 0
    sys.argv[:] = [script]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            parse_args(argv)
        except SystemExit as exc:
            status = exc.code if isinstance(exc.code, int) else 1
        except Exception as exc:  # a parser's own check of the values
            status, err = 1, io.StringIO(f'{type(exc).__name__}: {exc}')
    return status, out.getvalue(), err.getvalue()


def _load_parser(root, script):
    """The script's ``parse_args(argv)``, or None when it has none or
    cannot be imported."""
    import importlib.util
    path = osp.join(root, script)
    sys.path[:0] = [osp.dirname(path), root]
    try:
        name = '_docs_check_' + re.sub(r'\W', '_', script)
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return getattr(module, 'parse_args', None)
    except Exception:
        return None
    finally:
        del sys.path[:2]


def worker(root):
    """Read a request (JSON on stdin), print a report (JSON): each tool's
    ``--flag`` names, each parse's error (None if it parses), each
    config's build error (None if it builds)."""
    request = json.loads(sys.stdin.read())
    os.chdir(root)
    parsers, options = {}, {}
    for script in sorted(
            set(request['tools'])
            | {script
               for script, _, _ in request['parses']}):
        parse_args = _load_parser(root, script)
        if parse_args is not None:
            status, help_text, _ = _call_parser(parse_args, script,
                                                ['--help'])
        if parse_args is None or status != 0:
            parse_args = None
            proc = subprocess.run([sys.executable, script, '--help'],
                                  capture_output=True,
                                  text=True,
                                  timeout=120,
                                  cwd=root)
            help_text = proc.stdout
        parsers[script] = parse_args
        options[script] = sorted(set(re.findall(r'--[\w-]+', help_text)))
    parses = []
    for script, argv, optional in request['parses']:
        unknown = [
            f for f in flags_of(argv + optional)
            if f not in options[script] and f != '--help'
        ]
        if unknown:
            parses.append(f'unknown flag(s) {" ".join(unknown)}')
            continue
        if parsers[script] is None:
            parses.append(None)
            continue
        status, _, err = _call_parser(parsers[script], script, argv)
        lines = [line for line in err.strip().splitlines() if line]
        parses.append(lines[-1] if status else None)
    configs = {}
    if request['configs']:
        from mmengine.config import Config
        for config in request['configs']:
            try:
                Config.fromfile(osp.join(root, config))
                configs[config] = None
            except Exception as exc:
                configs[config] = f'{type(exc).__name__}: {exc}'[:300]
    print(json.dumps(dict(options=options, parses=parses, configs=configs)))


def test_shell_commands_are_split_as_a_shell_would():
    """Continuations, prompts, comments, env prefixes, separators and the
    launchers are understood; ``python -c`` and other modules are not
    commands to check."""
    block = [
        '$ OMP_NUM_THREADS=1 python tools/train.py \\',
        '    configs/a.py --work-dir w  # a comment',
        '# a comment line',
        'python -m torch.distributed.run --nproc_per_node=2 \\',
        '    tools/train.py configs/a.py --launcher pytorch',
        'python -c "import mmssda; print(1)"',
        'python -m pytest -q tests',
        'make demo && bash tools/install.sh --with-tests &',
        'GPUS=2 tools/slurm_train.sh p j configs/a.py w [--resume]',
        'data/own/',
        'source/images/train/x.jpg  a folder tree, not a command',
        'tools/train.py: error: output of a command, not a command',
    ]
    commands = shell_commands(block)
    assert [index for index, _ in commands] == [0, 3, 7, 7, 8]
    kinds = [classify(words) for _, words in commands]
    assert kinds == [
        ('python', 'tools/train.py', ['configs/a.py', '--work-dir', 'w']),
        ('python', 'tools/train.py',
         ['configs/a.py', '--launcher', 'pytorch']),
        ('make', ['demo']),
        ('shell', 'tools/install.sh', ['--with-tests']),
        ('shell', 'tools/slurm_train.sh',
         ['p', 'j', 'configs/a.py', 'w', '[--resume]']),
    ]
    assert split_optional(['w', '[--cfg-options', '...]', '[--resume]']) \
        == (['w'], ['--cfg-options', '--resume'])


def test_code_blocks_skip_other_languages_and_marked_blocks():
    """Fences with a language, indented fences and the skip mark."""
    text = '\n'.join([
        '```python', 'x = 1', '```', '', '- item', '', '  ```bash',
        '  make demo', '  ```', SKIP_MARK, '```shell', 'python other.py',
        '```', '```', 'make test', '```'
    ])
    assert [(lang, body) for lang, _, body in code_blocks(text)] == [
        ('python', ['x = 1']), ('bash', ['make demo']), ('', ['make test'])
    ]


BROKEN = """
Train with `configs/no_such_config.py` (tested in
`tests/test_docs/test_readme_commands.py::test_no_such_test`; see
[the guide](docs/no_such_guide.md) and [below](#no-such-heading)):

```bash
python tools/no_such_tool.py configs/ssda_yolov5n_fog_shapes.py
python tools/train.py configs/ssda_yolov5n_fog_shapes.py --no-such-flag
python tools/train.py configs/ssda_yolov5n_fog_shapes.py --launcher gpu
bash tools/install.sh --no-such-option
make no-such-target
```
"""

FIXED = """
## Train, fixed

Train with `configs/ssda_yolov5n_fog_shapes.py` (tested in
`tests/test_docs/test_readme_commands.py::test_readme_and_docs_commands`;
see [the licence](LICENSE), [the design](docs/design.md#model) and
[this section](#train-fixed)):

```bash
python tools/train.py configs/ssda_yolov5n_fog_shapes.py --work-dir w
python tools/demo.py --seed 1
bash tools/install.sh --with-tests
make demo
```
"""


def test_checker_finds_each_broken_command_and_config():
    """A missing script, an unknown flag, a value the parser refuses, a
    shell-script flag that does not exist, a missing make target, a
    missing config, a missing test, a dead link and a dead anchor are each
    reported; the corrected text after them gives no problem."""
    problems = check_commands(BROKEN + FIXED, source='broken.md')
    expected = [
        'config configs/no_such_config.py does not exist',
        'script tools/no_such_tool.py does not exist',
        'tools/train.py refuses it: unknown flag(s) --no-such-flag',
        'argument --launcher: invalid choice',
        'tools/install.sh has no flag --no-such-option',
        "the Makefile has no target 'no-such-target'",
        'test_readme_commands.py has no test test_no_such_test',
        'link to docs/no_such_guide.md, which does not exist',
        'link to broken.md#no-such-heading, which has no such heading',
    ]
    assert len(problems) == len(expected), '\n'.join(problems)
    for text in expected:
        assert any(text in problem for problem in problems), \
            f'{text!r} not in:\n' + '\n'.join(problems)
    assert all(problem.startswith('broken.md:') for problem in problems)
    assert max(int(problem.split(':')[1]) for problem in problems) \
        < BROKEN.count('\n') + 1


def test_readme_and_docs_commands():
    """Every command and config of README.md and docs/*.md."""
    paths = [osp.join(REPO, 'README.md')] + sorted(
        glob.glob(osp.join(REPO, 'docs', '*.md')))
    documents = {}
    for path in paths:
        with open(path) as f:
            documents[osp.relpath(path, REPO)] = f.read()
    problems = check_documents(documents)
    assert not problems, '\n'.join(problems)


if __name__ == '__main__':
    worker(sys.argv[1])
