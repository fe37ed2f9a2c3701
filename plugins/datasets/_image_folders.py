"""Image-class folders (train/<class>/<file>, test/<class>/<file>), read from a directory or
streamed from a .tar.gz without extracting it, decoded once and then read from a cache."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from mcbench_plugins.datasets._array_cache import FORMAT, Decoded, cached, file_sha256

SPLITS = ("train", "test")
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".webp", ".tif", ".tiff"})
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz")

Entries = dict[str, dict[str, list[tuple[str, bytes | Path]]]]
"""split -> class -> [(file name, encoded bytes or the file's path)]."""


def load_folders(base: Path, cache_dir: Path) -> tuple[Decoded, str]:
    """The decoded images under ``base`` and the content key they are cached under."""
    entries = list_folders(base)
    key = folders_key(entries)
    return cached(
        cache_dir / f"folders-{key}-v{FORMAT}.npz", lambda: assemble(entries, str(base))
    ), key


def load_archive(path: Path, cache_dir: Path) -> tuple[Decoded, str]:
    """The decoded images in the archive at ``path`` and its sha256."""
    sha256 = file_sha256(path)
    return cached(
        cache_dir / f"archive-{sha256}-v{FORMAT}.npz",
        lambda: assemble(read_archive(path), str(path)),
    ), sha256


def find_archive(root: Path, prefer: str, skip: tuple[str, ...] = ()) -> Path | None:
    """``root`` itself if it is an archive, else the one archive in it; with several, those
    whose name contains ``prefer`` (ignoring case, "-" and "_"), which must then be one."""
    if root.is_file():
        return root if root.name.endswith(ARCHIVE_SUFFIXES) else None
    if not root.is_dir():
        return None
    archives = sorted(
        p
        for p in root.iterdir()
        if p.is_file() and p.name not in skip and p.name.endswith(ARCHIVE_SUFFIXES)
    )
    if len(archives) > 1:
        archives = [
            p for p in archives if prefer in p.name.lower().replace("-", "").replace("_", "")
        ]
    if len(archives) > 1:
        raise ValueError(
            f"several candidate archives in {root}: "
            f"{', '.join(p.name for p in archives)}; pass the one to read as root"
        )
    return archives[0] if archives else None


def decode_image(data: bytes) -> np.ndarray:
    """One encoded image -> uint8 [H, W, 3] RGB."""
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image if image.mode == "RGB" else image.convert("RGB"), dtype=np.uint8)


def is_image_name(name: str) -> bool:
    # "._x.jpg" are macOS resource forks, not images
    return not name.startswith(".") and PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES


def list_folders(base: Path) -> Entries:
    entries: Entries = {}
    for split in SPLITS:
        classes = sorted(p for p in (base / split).iterdir() if p.is_dir())
        entries[split] = {
            c.name: [(f.name, f) for f in c.iterdir() if f.is_file() and is_image_name(f.name)]
            for c in classes
        }
    return entries


def folders_key(entries: Entries) -> str:
    """A key for a folder copy that needs no file read: hash of every image's relative
    path, size and modification time (two copies of equal-sized images written apart differ;
    the decoded data's own fingerprint is checked again where results are reused)."""
    listing = sorted(
        f"{split}/{name}/{file}\t{path.stat().st_size}\t{path.stat().st_mtime_ns}"
        for split, classes in entries.items()
        for name, files in classes.items()
        for file, path in files
    )
    return hashlib.sha256("\n".join(listing).encode()).hexdigest()


def read_archive(path: Path) -> Entries:
    """Stream a .tar.gz holding train/ and test/ class folders, possibly under one leading
    folder, keeping each image's encoded bytes."""
    try:
        return _read_archive(path)
    except (tarfile.TarError, EOFError, zlib.error) as e:
        raise ValueError(f"{path} is not a readable .tar.gz ({type(e).__name__}: {e})") from e


def _read_archive(path: Path) -> Entries:
    entries: Entries = {split: {} for split in SPLITS}
    prefixes = set()
    with tarfile.open(path, mode="r|gz") as tar:
        for member in tar:
            parts = PurePosixPath(member.name).parts
            if not member.isfile() or len(parts) not in (3, 4) or not is_image_name(parts[-1]):
                continue
            prefix, (split, name, file) = parts[:-3], parts[-3:]
            if split not in SPLITS:
                continue
            prefixes.add(prefix)
            entries[split].setdefault(name, []).append((file, tar.extractfile(member).read()))
    if len(prefixes) > 1:
        raise ValueError(
            f"{path} holds several train/test trees: "
            f"{', '.join('/'.join(p) or '(top level)' for p in sorted(prefixes))}"
        )
    return entries


def assemble(entries: Entries, where: str) -> Decoded:
    """Decode every image. Labels index the sorted class names; files within a class are
    taken in name order."""
    class_names = tuple(sorted(entries["train"]))
    if tuple(sorted(entries["test"])) != class_names:
        raise ValueError(
            f"{where}: train classes {list(class_names)} differ from test classes "
            f"{sorted(entries['test'])}"
        )
    arrays = {}
    for split in SPLITS:
        images, labels = [], []
        for label, name in enumerate(class_names):
            for _, payload in sorted(entries[split][name], key=lambda entry: entry[0]):
                images.append(
                    decode_image(payload if isinstance(payload, bytes) else payload.read_bytes())
                )
                labels.append(label)
        if not images:
            raise ValueError(f"{where}: no images in {split}/")
        shapes = {image.shape for image in images}
        if len(shapes) > 1:
            raise ValueError(f"{where}: {split} images differ in size: {sorted(shapes)}")
        arrays[split] = (
            np.ascontiguousarray(np.stack(images).transpose(0, 3, 1, 2)),
            np.array(labels, dtype=np.int64),
        )
    return Decoded(*arrays["train"], *arrays["test"], class_names)
