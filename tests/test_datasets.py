"""The dataset plugins: cifar10 on every local layout it reads, and synthetic."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
import time
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
from PIL import Image

from mcbench.registry.params import describe
from mcbench_plugins.datasets import _image_folders as image_folders
from mcbench_plugins.datasets import cifar10, synthetic
from mcbench_plugins.datasets.cifar10 import CIFAR10, CLASS_NAMES
from mcbench_plugins.datasets.synthetic import Synthetic

TRAIN_PER_CLASS, TEST_PER_CLASS = 3, 2
# written out of name order, to check that files are read in name order
FILE_NAMES = ("0002.png", "0000.png", "0001.png")


def make_images(seed: int = 0) -> dict[str, dict[str, list[np.ndarray]]]:
    """split -> class -> images (uint8 HWC), listed in file-name order."""
    rng = np.random.default_rng(seed)
    return {
        split: {
            name: [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(n)]
            for name in CLASS_NAMES
        }
        for split, n in (("train", TRAIN_PER_CLASS), ("test", TEST_PER_CLASS))
    }


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def layout_files(images):
    """(relative path, bytes) of every file of the folder layout, out of name order."""
    for split, classes in images.items():
        for name in reversed(CLASS_NAMES):
            files = [f for f in FILE_NAMES if int(f[:4]) < len(classes[name])]
            for file in files:
                yield f"{split}/{name}/{file}", png_bytes(classes[name][int(file[:4])])
            yield f"{split}/{name}/notes.txt", b"not an image"


def write_folders(base: Path, images) -> Path:
    for relative, data in layout_files(images):
        (base / relative).parent.mkdir(parents=True, exist_ok=True)
        (base / relative).write_bytes(data)
    return base


def write_archive(path: Path, images, leading: str = "cifar10-tiny") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for relative, data in layout_files(images):
            info = tarfile.TarInfo(f"{leading}/{relative}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def expected(images, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    arrays = [
        (image, label) for label, name in enumerate(CLASS_NAMES) for image in images[split][name]
    ]
    pixels = np.stack([a for a, _ in arrays]).transpose(0, 3, 1, 2)
    return torch.from_numpy(pixels.copy()), torch.tensor([label for _, label in arrays])


def check_matches(data, images):
    assert data.num_classes == 10 and data.class_names == CLASS_NAMES
    assert data.channels == 3 and data.image_size == 32
    for split, part in (("train", data.train), ("test", data.test)):
        pixels, labels = expected(images, split)
        assert part.images.dtype == torch.uint8 and part.labels.dtype == torch.int64
        assert torch.equal(part.images, pixels)
        assert torch.equal(part.labels, labels)


def test_reads_image_folders_exactly(tmp_path):
    images = make_images()
    root = write_folders(tmp_path / "data", images)
    data = CIFAR10().load(root, tmp_path / "cache")
    check_matches(data, images)
    assert len(data.train) == 10 * TRAIN_PER_CLASS and len(data.test) == 10 * TEST_PER_CLASS
    assert "image-class folders" in data.source and str(root) in data.source


def test_two_folder_copies_of_equal_sized_images_do_not_share_a_cache(tmp_path):
    cache = tmp_path / "cache"
    one, two = make_images(seed=0), make_images(seed=1)
    first = CIFAR10(source="folder").load(write_folders(tmp_path / "one", one), cache)
    second = CIFAR10(source="folder").load(write_folders(tmp_path / "two", two), cache)
    expected = torch.from_numpy(np.stack(two["train"][CLASS_NAMES[0]])).permute(0, 3, 1, 2)
    assert torch.equal(second.train.images[second.train.labels == 0], expected)
    assert first.fingerprint != second.fingerprint


def test_reads_folders_under_a_cifar10_subfolder(tmp_path):
    images = make_images()
    write_folders(tmp_path / "data" / "cifar10", images)
    check_matches(CIFAR10(source="folder").load(tmp_path / "data", tmp_path / "cache"), images)


@pytest.mark.parametrize("give_file", [False, True], ids=["root-folder", "root-is-archive"])
def test_streams_a_tar_gz_with_a_leading_folder(tmp_path, give_file):
    images = make_images()
    archive = write_archive(tmp_path / "data" / "cifar10-tiny.tar.gz", images)
    root = archive if give_file else archive.parent
    data = CIFAR10().load(root, tmp_path / "cache")
    check_matches(data, images)
    sha256 = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert sha256 in data.source and str(archive) in data.source
    assert not [p for p in archive.parent.iterdir() if p.is_dir()], "extracted to disk"


def test_archive_without_a_leading_folder(tmp_path):
    images = make_images()
    archive = write_archive(tmp_path / "data.tar.gz", images, leading=".")
    check_matches(CIFAR10(source="archive").load(archive, tmp_path / "cache"), images)


def test_second_load_reads_the_cache(tmp_path, monkeypatch):
    images = make_images()
    archive = write_archive(tmp_path / "data" / "c.tar.gz", images)
    folders = write_folders(tmp_path / "folders", images)
    cache = tmp_path / "cache"
    first = [CIFAR10().load(root, cache) for root in (archive, folders)]
    assert len(list((cache / "cifar10").glob("*.npz"))) == 2
    assert not [p for p in (cache / "cifar10").iterdir() if p.suffix != ".npz"], "temp files left"

    def no_decoding(data):
        raise AssertionError("decoded although a cache exists")

    monkeypatch.setattr(image_folders, "decode_image", no_decoding)
    for before, root in zip(first, (archive, folders)):
        again = CIFAR10().load(root, cache)
        check_matches(again, images)
        assert again.source == before.source
    # a changed folder has another key, so it is decoded again
    (folders / "train" / "cat" / "0003.png").write_bytes(png_bytes(images["train"]["cat"][0]))
    with pytest.raises(AssertionError, match="decoded although"):
        CIFAR10().load(folders, cache)


def test_an_unreadable_cache_is_rebuilt(tmp_path):
    images = make_images()
    archive = write_archive(tmp_path / "c.tar.gz", images)
    CIFAR10().load(archive, tmp_path / "cache")
    (stored,) = (tmp_path / "cache" / "cifar10").glob("*.npz")
    stored.write_bytes(b"truncated")
    with pytest.warns(UserWarning, match="unreadable cache"):
        check_matches(CIFAR10().load(archive, tmp_path / "cache"), images)
    check_matches(CIFAR10().load(archive, tmp_path / "cache"), images)


def test_picks_the_cifar10_archive_among_several(tmp_path):
    images = make_images()
    write_archive(tmp_path / "cifar10-tiny.tar.gz", images)
    write_archive(tmp_path / "other.tar.gz", make_images(seed=5))
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"torchvision's own download")
    data = CIFAR10(download=False).load(tmp_path, tmp_path / "cache")
    assert "cifar10-tiny.tar.gz" in data.source
    write_archive(tmp_path / "cifar_10_copy.tgz", images)
    with pytest.raises(ValueError, match="several candidate archives"):
        CIFAR10(download=False).load(tmp_path, tmp_path / "cache")


def test_subset_keeps_the_first_images_of_each_class(tmp_path):
    images = make_images()
    root = write_folders(tmp_path / "data", images)
    data = CIFAR10(train_subset=20, test_subset=10).load(root, tmp_path / "cache")
    assert len(data.train) == 20 and len(data.test) == 10
    assert torch.equal(torch.bincount(data.train.labels), torch.full((10,), 2))
    for label, name in enumerate(CLASS_NAMES):
        kept = data.train.images[data.train.labels == label]
        first_two = np.stack(images["train"][name][:2]).transpose(0, 3, 1, 2)
        assert torch.equal(kept, torch.from_numpy(first_two))
        assert torch.equal(
            data.test.images[data.test.labels == label][0],
            torch.from_numpy(images["test"][name][0].transpose(2, 0, 1).copy()),
        )
    with pytest.raises(ValueError, match="needs 4 airplane images"):
        CIFAR10(train_subset=40).load(root, tmp_path / "cache")


@pytest.mark.parametrize("values", [{"train_subset": 15}, {"test_subset": -10}, {"source": "web"}])
def test_rejects_bad_settings(values):
    with pytest.raises(ValueError):
        CIFAR10(**values)


def write_torchvision_batches(root: Path, per_batch: int = 2) -> tuple[np.ndarray, list[int]]:
    """Fake cifar-10-batches-py files in torchvision's format; returns NCHW images, labels."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    all_images, all_labels = [], []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        images = rng.integers(0, 256, (per_batch, 3, 32, 32), dtype=np.uint8)
        labels = rng.integers(0, 10, per_batch).tolist()
        with open(folder / name, "wb") as f:
            pickle.dump({"data": images.reshape(per_batch, 3072), "labels": labels}, f)
        all_images.append(images)
        all_labels += labels
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": list(CLASS_NAMES)}, f)
    return np.concatenate(all_images), all_labels


def test_reads_torchvision_batches_as_nchw(tmp_path, monkeypatch):
    import torchvision.datasets.cifar

    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *a, **k: True)
    images, labels = write_torchvision_batches(tmp_path)
    write_folders(tmp_path, make_images())  # present too, but torchvision's layout comes first
    data = CIFAR10().load(tmp_path, tmp_path / "cache")
    assert torch.equal(data.train.images, torch.from_numpy(images[:10]))
    assert torch.equal(data.test.images, torch.from_numpy(images[10:]))
    assert data.train.labels.tolist() == labels[:10] and data.test.labels.dtype == torch.int64
    assert data.class_names == CLASS_NAMES and "cifar-10-batches-py" in data.source


def test_a_broken_torchvision_folder_is_named(tmp_path):
    (tmp_path / "cifar-10-batches-py").mkdir()
    with pytest.raises(RuntimeError, match="rejects .*cifar-10-batches-py"):
        CIFAR10(download=False).load(tmp_path, tmp_path / "cache")


def test_missing_data_names_the_root_and_every_layout(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        CIFAR10(download=False).load(tmp_path, tmp_path / "cache")
    message = str(error.value)
    for needle in (
        str(tmp_path),
        "cifar-10-batches-py",
        f"{tmp_path}/train/<class>",
        f"{tmp_path}/cifar10/test/<class>",
        "*.tar.gz",
        "download: off",
    ):
        assert needle in message


def test_failed_download_is_reported(tmp_path, monkeypatch):
    import torchvision.datasets.cifar

    def offline(*args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(torchvision.datasets.cifar, "download_and_extract_archive", offline)
    with pytest.raises(FileNotFoundError, match="download into .* failed: URLError"):
        CIFAR10().load(tmp_path, tmp_path / "cache")


def test_explicit_source_looks_only_there(tmp_path):
    write_archive(tmp_path / "c.tar.gz", make_images())
    with pytest.raises(FileNotFoundError) as error:
        CIFAR10(source="folder").load(tmp_path, tmp_path / "cache")
    assert "tar.gz" not in str(error.value) and "batches" not in str(error.value)


def test_without_a_root_the_cache_is_read_whatever_the_environment_says(tmp_path, monkeypatch):
    # $MCBENCH_DATA reaches a plugin only as the CLI's --data-root
    write_folders(tmp_path / "env", make_images(seed=1))
    monkeypatch.setenv("MCBENCH_DATA", str(tmp_path / "env"))
    images = make_images()
    write_folders(tmp_path / "cache" / "data", images)
    data = CIFAR10().load(None, tmp_path / "cache")
    assert str(tmp_path / "cache" / "data") in data.source and "env" not in data.source
    check_matches(data, images)


def test_wrong_class_folders_are_refused(tmp_path):
    images = make_images()
    root = write_folders(tmp_path / "data", images)
    for split in ("train", "test"):
        (root / split / "truck").rename(root / split / "lorry")
    with pytest.raises(ValueError, match="expected the CIFAR-10 classes"):
        CIFAR10().load(root, tmp_path / "cache")


@pytest.mark.parametrize("module, cls", [(cifar10, CIFAR10), (synthetic, Synthetic)])
def test_plugins_register_and_document_every_parameter(module, cls):
    registered = []
    module.mcbench_register_datasets(register=registered.append)
    assert registered == [cls] and cls.kind == "dataset"
    assert all(param.help for param in describe(cls))


def test_synthetic_is_deterministic_per_seed(tmp_path):
    a, b = Synthetic().load(None, tmp_path), Synthetic().load(tmp_path / "ignored", tmp_path)
    other = Synthetic(seed=1).load(None, tmp_path)
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.test.images, b.test.images)
    assert not torch.equal(a.train.images, other.train.images)
    assert a.source == b.source and "seed=0" in a.source and "seed=1" in other.source


def test_synthetic_shapes_balance_and_statistics(tmp_path):
    data = Synthetic(
        num_classes=5, image_size=12, channels=1, train_per_class=10, test_per_class=6
    ).load(None, tmp_path)
    assert data.train.images.shape == (50, 1, 12, 12) and data.test.images.shape == (30, 1, 12, 12)
    assert data.train.images.dtype == torch.uint8 and data.train.labels.dtype == torch.int64
    assert torch.equal(torch.bincount(data.train.labels), torch.full((5,), 10))
    assert torch.equal(torch.bincount(data.test.labels), torch.full((5,), 6))
    pixels = data.train.images.float() / 255
    assert data.mean == pytest.approx([pixels.mean().item()], abs=1e-6)
    assert data.std == pytest.approx([pixels.std().item()], abs=1e-6)
    assert data.num_classes == 5 and len(data.class_names) == 5


def test_synthetic_classes_are_separable(tmp_path):
    data = Synthetic().load(None, tmp_path)
    train, test = data.train.images.float().flatten(1), data.test.images.float().flatten(1)
    centroids = torch.stack(
        [train[data.train.labels == c].mean(0) for c in range(data.num_classes)]
    )
    predicted = torch.cdist(test, centroids).argmin(1)
    assert (predicted == data.test.labels).float().mean().item() >= 0.95


def test_a_small_cnn_learns_synthetic_quickly(tmp_path):
    data = Synthetic().load(None, tmp_path)
    mean, std = torch.tensor(data.mean).view(1, -1, 1, 1), torch.tensor(data.std).view(1, -1, 1, 1)

    def normalised(images):
        return (images.float() / 255 - mean) / std

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(8, 16, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(16, data.num_classes),
    )
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    x, y = normalised(data.train.images), data.train.labels
    for _ in range(5):
        for batch in torch.randperm(len(y)).split(32):
            optimiser.zero_grad()
            torch.nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            optimiser.step()
    with torch.no_grad():
        predicted = model(normalised(data.test.images)).argmax(1)
    accuracy = (predicted == data.test.labels).float().mean()
    assert accuracy.item() >= 0.95


@pytest.mark.parametrize(
    "values", [{"num_classes": 1}, {"image_size": 2}, {"noise": -0.1}, {"train_per_class": 0}]
)
def test_synthetic_rejects_bad_settings(values):
    with pytest.raises(ValueError):
        Synthetic(**values)


REAL_DATA = Path(
    os.environ.get("MCBENCH_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data"
)


@pytest.mark.realdata
def test_real_cifar10_archive(tmp_path):
    if not (REAL_DATA.exists() and any(REAL_DATA.iterdir())):
        pytest.skip(f"no CIFAR-10 copy at {REAL_DATA}")
    started = time.perf_counter()
    data = CIFAR10(download=False).load(REAL_DATA, tmp_path)
    cold = time.perf_counter() - started
    started = time.perf_counter()
    again = CIFAR10(download=False).load(REAL_DATA, tmp_path)
    cached = time.perf_counter() - started
    print(f"\nCIFAR-10 from {data.source}: cold load {cold:.1f} s, cached load {cached:.2f} s")
    assert data.class_names == CLASS_NAMES
    assert data.train.images.shape == (50_000, 3, 32, 32)
    assert data.test.images.shape == (10_000, 3, 32, 32)
    assert torch.equal(torch.bincount(data.train.labels), torch.full((10,), 5_000))
    assert torch.equal(torch.bincount(data.test.labels), torch.full((10,), 1_000))
    assert torch.equal(again.train.images, data.train.images)
    # a real photo set, not a blank decode: per-channel means near CIFAR-10's published ones
    means = data.train.images.float().mean(dim=(0, 2, 3)) / 255
    assert means.tolist() == pytest.approx(list(cifar10.MEAN), abs=0.01)
