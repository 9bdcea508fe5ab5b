"""Recursive folder scans that see each file once.

Folder links are followed (a data root often links its splits from
elsewhere), but a folder reached again through a link (a link to a parent
makes a loop, a second link to the same folder a copy) is not walked twice,
and a file reached under two paths (linked files, hard links, linked
folders) is listed once: by identity of the file on disk
(``st_dev``, ``st_ino``), keeping the first path in walk order; of a
folder and a link to it side by side, the folder's path is kept.
"""
import os
import os.path as osp
import warnings
from typing import List, Optional, Sequence, Tuple

_MAX_LISTED = 5


def list_files(root: str,
               extensions: Sequence[str],
               owner: str = 'scan') -> List[str]:
    """The files under ``root`` (recursively) whose extension is in
    ``extensions``, each file once, in walk order: a folder's files
    (sorted by name), then its subfolders' (sorted by name).

    Args:
        root (str): The folder to scan.
        extensions (Sequence[str]): Lower-case extensions with the dot
            (``('.jpg', '.png')``); matched case-insensitively.
        owner (str): Name for the warning. Defaults to ``'scan'``.

    Returns:
        list[str]: Paths below ``root`` (joined to it). A file
        reached under several paths appears once, under the first; one
        ``UserWarning`` names the other paths and the folders skipped
        because they were already walked (link loops, linked copies).

    Example:
        >>> list_files('data/fog_shapes/source/images', ('.jpg', '.png'))
    """
    extensions = tuple(e.lower() for e in extensions)
    # every folder is claimed when its parent lists it (real folders before
    # links), before os.walk enters it: each folder is entered once
    seen_dirs = {_identity(root): root}
    candidates, repeated_dirs = [], []
    for top, dirs, names in os.walk(root, followlinks=True):
        kept = []
        for d in sorted(dirs,
                        key=lambda d: (osp.islink(osp.join(top, d)), d)):
            path = osp.join(top, d)
            key = _identity(path)
            if key is None:
                continue
            if key in seen_dirs:
                repeated_dirs.append(f'{path} (= {seen_dirs[key]})')
                continue
            seen_dirs[key] = path
            kept.append(d)
        dirs[:] = sorted(kept)
        candidates.extend(
            osp.join(top, n) for n in sorted(names)
            if osp.splitext(n)[1].lower() in extensions)
    files, seen_files, repeated = [], {}, []
    for path in candidates:
        key = _identity(path)
        if key is not None and key in seen_files:
            repeated.append(f'{path} (= {seen_files[key]})')
            continue
        seen_files[key if key is not None else path] = path
        files.append(path)
    if repeated or repeated_dirs:
        skipped = repeated_dirs + repeated
        warnings.warn(
            f'{owner}: {len(repeated_dirs)} folder(s) and {len(repeated)} '
            f'file(s) under {root!r} are reached again through links and '
            f'are counted once: {skipped[:_MAX_LISTED]}'
            f'{" ..." if len(skipped) > _MAX_LISTED else ""}')
    return files


def _identity(path: str) -> Optional[Tuple[int, int]]:
    """``(st_dev, st_ino)`` of what ``path`` points to, None if it is a
    broken link."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino
