"""Face crops for training and testing the mask classifier.

Two sources, one result (`FaceSet`: uint8 crops + labels + what was skipped):
- class folders (`protected/` + `unprotected/`, or Kaggle's `with_mask/` + `without_mask/`): MTCNN runs once
  per image and the crop is cached on disk, keyed by the file's content and the MTCNN settings/weights;
- labeled photos (any format `cctv.labels.load_labels` reads): the labeled boxes are cropped directly.

An image in which MTCNN finds no face is used whole (resized like a face crop) and counted: face datasets
hold portraits and ready-made face crops (where MTCNN, lacking context, often fails), and MTCNN misses
masked faces more often than bare ones, so skipping them would drop the hard protected examples.
"""
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from .atomic import write_bytes
from .classifier import CLASS_NAMES, DEFAULT_MTCNN_SETTINGS
from .errors import UserError, user_errors
from .images import list_images, load_image

PROTECTED, UNPROTECTED = CLASS_NAMES.index("protected"), CLASS_NAMES.index("unprotected")
CLASS_FOLDERS = {"protected": PROTECTED, "with_mask": PROTECTED, "unprotected": UNPROTECTED,
                 "without_mask": UNPROTECTED}
DEFAULT_CACHE_DIR = Path("runs/cache/face_crops")
# Faces are found on a copy whose longest side is at most this; the crop is cut from the full image. Class
# folders hold portraits whose faces are large: a 4608 px photo took 4-11 s at full size, 0.1-0.4 s here.
DETECT_MAX_SIDE = 1024


@dataclass
class FaceSet:
    """Face crops with their classes; `no_face` and `unreadable` list the files that needed special handling."""
    crops: np.ndarray  # uint8 (N,S,S,3) RGB
    labels: np.ndarray  # int64 (N,), 1 = protected
    names: list = field(default_factory=list)  # where each crop came from
    no_face: list = field(default_factory=list)  # images with no face found (used whole)
    unreadable: list = field(default_factory=list)  # files skipped: not readable images
    source: str = ""

    def __len__(self):
        return len(self.labels)

    def counts(self) -> dict:
        return {name: int((self.labels == i).sum()) for i, name in enumerate(CLASS_NAMES)}

    def subset(self, index):
        index = np.asarray(index, dtype=np.int64)
        return FaceSet(self.crops[index], self.labels[index], [self.names[i] for i in index], self.no_face,
                       self.unreadable, self.source)

    def summary(self) -> dict:
        """Plain-typed description for a checkpoint's metadata and the printed report."""
        return {"source": self.source, "faces": len(self), **self.counts(), "no_face": len(self.no_face),
                "unreadable": len(self.unreadable)}


def faceset_from_batches(crop_batches, label_batches, size, names=(), no_face=(), unreadable=(), source=""):
    """A FaceSet from lists of crop batches (K,S,S,3) and label batches (K,); empty lists give an empty set."""
    crops = np.concatenate(crop_batches) if crop_batches else np.zeros((0, size, size, 3), np.uint8)
    labels = np.concatenate(label_batches).astype(np.int64) if label_batches else np.zeros(0, np.int64)
    return FaceSet(crops, labels, list(names), list(no_face), list(unreadable), source)


def concat(sets) -> FaceSet:
    size = sets[0].crops.shape[1] if sets else DEFAULT_MTCNN_SETTINGS["image_size"]
    return faceset_from_batches([s.crops for s in sets], [s.labels for s in sets], size,
                                [n for s in sets for n in s.names], [n for s in sets for n in s.no_face],
                                [n for s in sets for n in s.unreadable], " + ".join(s.source for s in sets))


def class_folders(root) -> dict:
    """{label: folder} for a dataset folder with protected/unprotected (or with_mask/without_mask) subfolders."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: no such examples folder")
    found = {}
    for name, label in CLASS_FOLDERS.items():
        if (root / name).is_dir() and label not in found:
            found[label] = root / name
    if len(found) < 2:
        raise UserError(f"{root}: expected class folders protected/ and unprotected/ "
                        f"(or with_mask/ and without_mask/)")
    return found


def list_examples(root, per_class=None, seed=0) -> list:
    """[(image path, label)] of a class-folder dataset; `per_class` picks that many per class, seeded."""
    rng = np.random.default_rng(seed)
    examples = []
    for label, folder in sorted(class_folders(root).items()):
        files = list_images(folder)
        if per_class is not None and per_class < len(files):
            files = [files[i] for i in sorted(rng.choice(len(files), per_class, replace=False))]
        examples += [(f, label) for f in files]
    return examples


def whole_image_box(img) -> np.ndarray:
    return np.array([[0, 0, img.shape[1], img.shape[0]]], np.float32)


class CropCache:
    """PNG face crops on disk, one per (image content, MTCNN settings + weights, detection size)."""

    def __init__(self, cache_dir, mtcnn_settings, mtcnn_model_path=None):
        weights = "pretrained"
        if mtcnn_model_path is not None:
            if not Path(mtcnn_model_path).is_file():
                raise UserError(f"{mtcnn_model_path}: no such MTCNN checkpoint")
            weights = hashlib.sha1(Path(mtcnn_model_path).read_bytes()).hexdigest()
        key = json.dumps({"settings": mtcnn_settings, "weights": weights, "detect_max_side": DETECT_MAX_SIDE},
                         sort_keys=True)
        self.dir = Path(cache_dir) / hashlib.sha1(key.encode()).hexdigest()[:16]

    def _path(self, digest, kind):
        return self.dir / digest[:2] / f"{digest}.{kind}.png"

    def get(self, digest):
        """(crop, face_found) or None when not cached."""
        for kind, found in (("face", True), ("whole", False)):
            path = self._path(digest, kind)
            if path.is_file():
                crop = cv2.imread(str(path), cv2.IMREAD_COLOR)
                if crop is not None:
                    return cv2.cvtColor(crop, cv2.COLOR_BGR2RGB), found
        return None

    def put(self, digest, crop, face_found):
        _, png = cv2.imencode(".png", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
        write_bytes(self._path(digest, "face" if face_found else "whole"), png.tobytes())


MTCNN_ARGUMENTS = ("image_size", "margin", "min_face_size", "thresholds", "factor")


def make_mtcnn(mtcnn_settings, mtcnn_model_path=None):
    from mtcnn import MTCNN, MTCNNWeightsError

    settings = {k: v for k, v in mtcnn_settings.items() if k in MTCNN_ARGUMENTS}  # not e.g. "weights"
    with user_errors(MTCNNWeightsError):
        return MTCNN(**settings, keep_all=True, select_largest=True, weights_path=mtcnn_model_path)


def largest_face_crop(mtcnn, img, image_size, margin, max_side=DETECT_MAX_SIDE):
    """(crop, face_found): the largest face MTCNN finds, else the whole image. Faces are found on a copy no
    larger than `max_side`; the crop is cut from the full-resolution image."""
    from mtcnn import crop_faces

    scale = min(1.0, max_side / max(img.shape[:2]))
    small = img if scale == 1.0 else cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    boxes, _ = mtcnn.detect(small)
    found = len(boxes) > 0
    return crop_faces(img, boxes[:1] / scale if found else whole_image_box(img), image_size, margin)[0], found


def face_crops_from_files(examples, mtcnn_settings=None, mtcnn_model_path=None, cache_dir=DEFAULT_CACHE_DIR,
                          source="", progress=True) -> FaceSet:
    """One face crop per (image, label): MTCNN's largest face, computed once and cached. The images not in the
    cache yet get their own pass (and progress bar): the one-time cost of a new dataset."""
    settings = dict(mtcnn_settings or DEFAULT_MTCNN_SETTINGS)
    size, margin = settings["image_size"], settings["margin"]
    cache = CropCache(cache_dir, settings, mtcnn_model_path)
    done, todo, unreadable = {}, [], []
    for i, (path, _) in enumerate(tqdm(examples, desc=f"cached face crops {source}".strip(), unit="img",
                                       disable=not progress, leave=False)):
        try:
            digest = hashlib.sha1(Path(path).read_bytes()).hexdigest()
        except OSError:
            unreadable.append(str(path))
            continue
        cached = cache.get(digest)
        if cached is None:
            todo.append((i, digest))
        else:
            done[i] = cached
    if todo:
        print(f"{source or 'images'}: detecting faces in {len(todo)} new images, once ({len(done)} already cached in "
              f"{cache.dir})", flush=True)
        mtcnn = make_mtcnn(settings, mtcnn_model_path)
        for i, digest in tqdm(todo, desc="detecting faces (one time)", unit="img", disable=not progress):
            try:
                img = load_image(examples[i][0])
            except UserError:
                unreadable.append(str(examples[i][0]))
                continue
            done[i] = largest_face_crop(mtcnn, img, size, margin)
            cache.put(digest, *done[i])
    order = sorted(done)
    names = [str(examples[i][0]) for i in order]
    return faceset_from_batches([done[i][0][None] for i in order], [[examples[i][1]] for i in order], size, names,
                                [n for i, n in zip(order, names) if not done[i][1]], unreadable, source)


def face_crops_from_folder(root, per_class=None, seed=0, **kwargs) -> FaceSet:
    return face_crops_from_files(list_examples(root, per_class, seed), source=str(root), **kwargs)


def split_by_image(items, test_fraction=0.2, seed=0):
    """(train items, test items): a fixed, seeded split of labeled images (all faces of a photo stay together)."""
    items = sorted(items, key=lambda it: str(it.key))
    order = np.random.default_rng(seed).permutation(len(items))
    n_test = int(round(len(items) * test_fraction))
    test = set(order[:n_test].tolist())
    return [it for i, it in enumerate(items) if i not in test], [it for i, it in enumerate(items) if i in test]


def iter_labeled_images(items, min_face_size=20, progress=True, desc="labeled photos"):
    """Yield (item, image or None if unreadable, boxes (K,4), labels (K,)) for the photos with at least one
    labeled face of `min_face_size` px or more on its short side (smaller faces are left out)."""
    for item in tqdm(items, desc=desc, unit="img", disable=not progress):
        keep = [i for i, box in enumerate(item.boxes) if min(box[2] - box[0], box[3] - box[1]) >= min_face_size]
        if not keep:
            continue
        try:
            img = load_image(item.image_path)
        except UserError:
            img = None
        yield item, img, item.boxes[keep], np.array([CLASS_NAMES.index(item.classes[i]) for i in keep])


def box_region(img, box) -> np.ndarray:
    """The pixels of a box (x1,y1,x2,y2), clipped to the image."""
    x1, y1, x2, y2 = np.round(box).astype(int)
    return img[max(y1, 0):y2, max(x1, 0):x2]


def face_crops_from_labels(items, image_size=160, min_face_size=20, source="labeled faces",
                           progress=True) -> FaceSet:
    """Crops of the labeled boxes (no detector involved), cut and resized by `mtcnn.crop_faces` as live faces are."""
    from mtcnn import crop_faces

    crops, labels, names, unreadable = [], [], [], []
    for item, img, boxes, classes in iter_labeled_images(items, min_face_size, progress):
        if img is None:
            unreadable.append(str(item.image_path))
            continue
        crops.append(crop_faces(img, boxes, image_size, 0))
        labels.append(classes)
        names += [f"{item.image_path}#{i}" for i in range(len(boxes))]
    return faceset_from_batches(crops, labels, image_size, names, (), unreadable, source)
