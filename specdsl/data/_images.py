"""Folders of image files: layout detection, parallel decoding with PIL, and a cache keyed by the files.

Layouts (detected in this order):

* ``PetImages/Cat``, ``PetImages/Dog`` (Microsoft's Kaggle cats-and-dogs download): the folder holding
  ``PetImages``, or ``PetImages`` itself, is read as class subfolders.
* split folders: ``train/`` (and optionally ``val/``, ``valid/``, ``validation/``, ``test/``), each in one of
  the layouts below; the folders' own split is kept. Kaggle's unlabeled ``test1/`` is ignored.
* class subfolders: one subfolder per class, class names sorted, images found at any depth inside.
* Kaggle flat naming: ``cat.0.jpg``, ``dog.12.jpg``; the class is the name before the first dot.

Only files with an image extension are read; others (``Thumbs.db``, ``readme.txt``) are ignored. Image files
that PIL cannot decode (empty, truncated, not an image) are skipped and counted, with one DataWarning.
Everything else is converted (CMYK, palette, grayscale, RGBA) to RGB or to grayscale.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

from ..errors import DataError
from ._cache import FORMAT, memo
from ._dataset import Arrays
from ._mapped import read_mapped, resolve_storage, write_mapped
from ._transform import fit_aspect

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
SPLIT_FOLDERS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
UNLABELED_FOLDERS = frozenset({"test1"})
DEFAULT_SIZE = (64, 64)

# Number of images decoded by this process; tests read it to tell a cache hit from a decode.
decoded = 0


def _is_image(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and _is_image(p))


def _kaggle_class(p: Path) -> str | None:
    stem_parts = p.name.split(".")
    return stem_parts[0] if len(stem_parts) >= 3 and stem_parts[0] else None


def _labeled_files(folder: Path) -> tuple[str, list[tuple[Path, str]]]:
    """(layout, [(file, class name)]) for a folder of class subfolders or of Kaggle-named files."""
    by_class = {d.name: _images_under(d) for d in _subdirs(folder)}
    if any(by_class.values()):  # a subfolder without images is not a class
        return "class subfolders", [(p, name) for name, files in by_class.items() for p in files]
    flat = sorted(p for p in folder.iterdir() if p.is_file() and _is_image(p))
    named = [(p, _kaggle_class(p)) for p in flat]
    if named and any(c is not None for _, c in named):
        return "kaggle names", [(p, c) for p, c in named if c is not None]
    return "empty", []


def scan(root: Path) -> tuple[str, dict[str, list[tuple[Path, str]]]]:
    """(layout description, {part: [(file, class name)]}) where part is ``pool`` or train/val/test."""
    if not root.is_dir():
        raise DataError(
            f"the image folder {root} does not exist."
            if not root.exists()
            else f"{root} is a file, not a folder of images."
        )
    if (root / "PetImages").is_dir():
        root = root / "PetImages"
    subdirs = {d.name.lower(): d for d in _subdirs(root)}
    if "train" in subdirs and set(subdirs) <= set(SPLIT_FOLDERS) | UNLABELED_FOLDERS:
        parts, kinds = {}, set()
        for name, d in subdirs.items():
            if name in SPLIT_FOLDERS:
                kind, files = _labeled_files(d)
                if files:
                    parts[SPLIT_FOLDERS[name]] = files
                    kinds.add(kind)
        if "train" in parts:
            if set(parts) == {"train"}:
                return f"{'/'.join(sorted(kinds))} in train/", {"pool": parts["train"]}
            return f"split folders ({', '.join(parts)}) of {'/'.join(sorted(kinds))}", parts
    kind, files = _labeled_files(root)
    if not files:
        raise DataError(
            f"no labeled images in {root}.",
            hint="Expected one subfolder per class (cat/, dog/), Kaggle-named files (cat.0.jpg), "
            "Microsoft's PetImages/Cat and PetImages/Dog, or train/ and test/ folders holding one of these.",
        )
    return kind, {"pool": files}


def folder_key(
    root: Path,
    parts: dict[str, list[tuple[Path, str]]],
    size: tuple[int, int],
    channels: int,
    resize: str = "squash",
) -> str:
    """A hash of every file's relative path, size and mtime, and of the decoded size and resize mode."""
    mode = "" if resize == "squash" else f"/{resize}"
    digest = hashlib.sha256(f"specdsl-folder/{FORMAT}/{size[0]}x{size[1]}x{channels}{mode}\n".encode())
    for part in sorted(parts):
        for path, label in sorted(parts[part]):
            st = path.stat()
            digest.update(
                f"{part}\t{label}\t{path.relative_to(root)}\t{st.st_size}\t{st.st_mtime_ns}\n".encode()
            )
    return digest.hexdigest()[:40]


def _decode(path: Path, size: tuple[int, int], mode: str, resize: str = "squash"):
    import numpy as np
    from PIL import Image

    global decoded
    decoded += 1
    h, w = size
    try:
        with Image.open(path) as img:
            img.draft(None, (w, h))  # JPEG: let libjpeg scale down while decoding
            img = img.convert(mode)
            if resize != "squash":
                img = _fit_image(img, size, resize)
            img = img.resize((w, h), Image.Resampling.BILINEAR)
            return np.asarray(img, dtype=np.uint8).reshape(h, w, len(mode))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


def _fit_image(img, size: tuple[int, int], resize: str):
    """A PIL image cropped (``crop``) or padded with black (``pad``) to the aspect ratio of ``size``."""
    from PIL import Image

    top, bottom, left, right = fit_aspect(img.height, img.width, *size, resize)
    if resize == "crop":
        return img.crop((left, top, img.width - right, img.height - bottom))
    canvas = Image.new(img.mode, (img.width + left + right, img.height + top + bottom))
    canvas.paste(img, (left, top))
    return canvas


def load_folder(
    root: Path,
    *,
    size: tuple[int, int] | None,
    channels: int | None,
    cache_dir: Path,
    resize: str = "squash",
    storage: str = "memory",
) -> Arrays:
    """The images under ``root`` decoded to ``size`` (default 64x64) and 3 channels (or ``channels``),
    ``resize``-d (squash, crop or pad: see :func:`~specdsl.data._transform.fit_aspect`). ``storage``: ``memory``
    (an .npz cache read into memory), ``disk`` (a memory-mapped cache, decoded into it image by image) or
    ``auto`` (disk for many images: :func:`~specdsl.data._mapped.resolve_storage`)."""
    size = tuple(size) if size is not None else DEFAULT_SIZE
    channels = channels or 3
    layout, parts = scan(root)
    key = folder_key(root, parts, size, channels, resize)
    if resolve_storage(storage, sum(map(len, parts.values())), (*size, channels)) == "disk":
        arrays = read_mapped(cache_dir / "folders" / key)
        if arrays is None:
            _decode_mapped(cache_dir / "folders" / key, root, layout, parts, size, channels, resize)
            arrays = read_mapped(cache_dir / "folders" / key)
            assert arrays is not None
    else:
        cache_file = cache_dir / "folders" / f"{key}.npz"
        arrays = memo(cache_file, lambda: _decode_parts(root, layout, parts, size, channels, resize))
    if arrays.skipped:
        arrays.notes.append(
            f"{root}: skipped {arrays.skipped} image file{'s' if arrays.skipped != 1 else ''} "
            "that could not be decoded."
        )
    return arrays


def _part(name: str) -> str:
    return "train" if name == "pool" else name


def _classes(parts) -> list[str]:
    return sorted({label for files in parts.values() for _, label in files})


def _decode_mapped(stem, root, layout, parts, size, channels, resize) -> None:
    """Decode every image straight into a memory-mapped cache at ``stem`` (no more than a few in memory)."""
    from concurrent.futures import ThreadPoolExecutor

    class_names = _classes(parts)
    index = {name: i for i, name in enumerate(class_names)}
    mode = "L" if channels == 1 else "RGB"
    files = [(part, path, label) for part, fs in parts.items() for path, label in fs]
    skipped = 0

    def fill(out) -> dict[str, tuple[list[int], list[int]]]:
        nonlocal skipped

        def work(i: int) -> bool:
            im = _decode(files[i][1], size, mode, resize)
            if im is not None:
                out[i] = im
            return im is not None

        with warnings.catch_warnings(), ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            warnings.filterwarnings("ignore", module=r"PIL\.")
            ok = list(pool.map(work, range(len(files))))
        skipped = ok.count(False)
        rows: dict[str, tuple[list[int], list[int]]] = {_part(p): ([], []) for p in parts}
        for i, (part, _, label) in enumerate(files):
            if ok[i]:
                rows[_part(part)][0].append(i)
                rows[_part(part)][1].append(index[label])
        if not rows["train"][0]:
            raise DataError(f"none of the image files in {root} could be decoded.")
        return rows

    write_mapped(
        stem,
        (len(files), *size, channels),
        fill,
        class_names=class_names,
        source=f"{root} ({layout})",
        skipped=lambda: skipped,
    )


def _decode_parts(root, layout, parts, size, channels, resize="squash") -> Arrays:
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    class_names = _classes(parts)
    index = {name: i for i, name in enumerate(class_names)}
    mode = "L" if channels == 1 else "RGB"
    kw, skipped = {}, 0
    # PIL warns about odd EXIF data and palettes in photos it decodes fine. The filter is set here, once, in
    # the calling thread: catch_warnings() inside the workers would race on the global filter list.
    with warnings.catch_warnings(), ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        warnings.filterwarnings("ignore", module=r"PIL\.")
        for part, files in parts.items():
            images = list(pool.map(lambda f: _decode(f[0], size, mode, resize), files))
            ok = [i for i, im in enumerate(images) if im is not None]
            skipped += len(files) - len(ok)
            x = np.stack([images[i] for i in ok]) if ok else np.zeros((0, *size, channels), np.uint8)
            y = np.array([index[files[i][1]] for i in ok], dtype=np.int64)
            kw[f"x_{_part(part)}"], kw[f"y_{_part(part)}"] = x, y
    if len(kw["y_train"]) == 0:
        raise DataError(f"none of the image files in {root} could be decoded.")
    return Arrays(class_names=class_names, source=f"{root} ({layout})", skipped=skipped, **kw)
