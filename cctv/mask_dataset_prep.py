"""Building `mask_dataset/{train,test}/{protected,unprotected}` from a Kaggle-style folder (with_mask/,
without_mask/) and/or labeled photos (each labeled face cropped to its own file)."""
import os
import shutil
import signal
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from .atomic import check_writable_dir, write_bytes, write_error
from .classifier import CLASS_NAMES
from .detection_eval import short_side
from .errors import UserError, check_range
from .face_dataset import box_region, class_folders, iter_labeled_images, split_by_image
from .images import IMAGE_SUFFIXES, list_images, load_image

SPLITS = ("train", "test")


@dataclass
class PrepReport:
    written: Counter = field(default_factory=Counter)  # (split, class) -> files
    unreadable: list = field(default_factory=list)
    too_small: tuple = None  # (labeled faces left out by --min_face_size, all labeled faces, the size)

    def table(self) -> str:
        from .tables import format_table

        counts = [[split] + [self.written[split, c] for c in CLASS_NAMES] for split in SPLITS]
        rows = [format_table(["split", *CLASS_NAMES], counts, min_widths=(0,) + (11,) * len(CLASS_NAMES))]
        if self.too_small:
            left_out, labeled, size = self.too_small
            rows.append(f"labeled faces under {size:g} px (short side) left out: {left_out} of {labeled} "
                        f"(--min_face_size)")
        rows.append(f"unreadable files skipped: {len(self.unreadable)}")
        rows += [f"  {f}" for f in self.unreadable[:10]]
        if len(self.unreadable) > 10:
            rows.append(f"  ... and {len(self.unreadable) - 10} more")
        return "\n".join(rows)


BUILD_DIR = ".prepare.partial"  # the new dataset is built here, inside the output folder (same file system)


def check_no_overlap(output, **inputs):
    """The output's split folders are replaced: refuse an input folder inside the output, or the other way."""
    out = Path(output).resolve()
    for flag, path in inputs.items():
        if path is None:
            continue
        src = Path(path).resolve()
        if src == out or out in src.parents or src in out.parents:
            raise UserError(f"--output_path {output} and --{flag} {path} overlap: the output's train/ and test/ "
                            f"are replaced, so keep the inputs outside it (and it outside them)")


def check_output(output_path, overwrite):
    """Refuse (unless overwrite) when the split folders already hold images; the folder must be writable."""
    output = Path(output_path)
    check_writable_dir(output, "--output_path")
    folders = [output / s / c for s in SPLITS for c in CLASS_NAMES]
    existing = [f for d in folders if d.is_dir() for f in d.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES]
    if existing and not overwrite:
        raise UserError(f"{output}: already holds {len(existing)} images in its split folders "
                        f"(use --overwrite to replace them)")
    return output


@contextmanager
def building(output):
    """A fresh build folder inside `output` (whatever an interrupted run left there is cleared first);
    removed whatever happens, so an interrupted run leaves the final folders as they were."""
    _restore_interrupted_swap(output)
    build = output / BUILD_DIR
    if build.exists():
        shutil.rmtree(build)
    for s in SPLITS:
        for c in CLASS_NAMES:
            (build / s / c).mkdir(parents=True)
    try:
        yield build
    finally:
        shutil.rmtree(build, ignore_errors=True)


def replace_splits(build, output):
    """Move the built train/ and test/ into place (the old ones aside, then deleted). Ctrl-C and SIGTERM wait
    for the few renames, so the final folders are never half old, half new."""
    blocked = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    try:
        for s in SPLITS:
            if (output / s).exists():
                os.rename(output / s, output / f".{s}.old")
        for s in SPLITS:
            os.rename(build / s, output / s)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
    for s in SPLITS:
        shutil.rmtree(output / f".{s}.old", ignore_errors=True)


def _restore_interrupted_swap(output):
    """A run killed (-9) in the middle of replace_splits: put the old split back where the new one is missing."""
    for s in SPLITS:
        old = output / f".{s}.old"
        if old.exists():
            if (output / s).exists():
                shutil.rmtree(old)
            else:
                os.rename(old, output / s)


def split_class_folder(source_path, output, train_per_class, seed, report, progress=True):
    """Per class: `train_per_class` readable images (seeded pick) to train/, the rest to test/. Files keep
    their names; unreadable ones are skipped and listed."""
    rng = np.random.default_rng(seed)
    for label, folder in sorted(class_folders(source_path).items()):
        name = CLASS_NAMES[label]
        files = list_images(folder)
        files = [files[i] for i in rng.permutation(len(files))]
        n_train = 0
        for f in tqdm(files, desc=f"{folder.name}", unit="img", disable=not progress):
            try:
                load_image(f)
            except UserError:
                report.unreadable.append(str(f))
                continue
            split = "train" if n_train < train_per_class else "test"
            n_train += split == "train"
            try:
                shutil.copyfile(f, output / split / name / f.name)
            except OSError as e:
                raise write_error(output / split / name / f.name, e) from None
            report.written[split, name] += 1


def crop_labeled_photos(items, output, test_fraction, min_face_size, seed, report, progress=True):
    """Each labeled face (>= min_face_size px) to its own PNG, the photos split by image (seeded)."""
    sizes = np.concatenate([short_side(item.boxes) for item in items]) if items else np.zeros(0)
    report.too_small = (int((sizes < min_face_size).sum()), len(sizes), min_face_size)
    for split, part in zip(SPLITS, split_by_image(items, test_fraction, seed)):
        for item, img, boxes, labels in iter_labeled_images(part, min_face_size, progress, desc=f"labeled {split}"):
            if img is None:
                report.unreadable.append(str(item.image_path))
                continue
            stem = Path(item.image_path).stem
            for i, (box, label) in enumerate(zip(boxes, labels)):
                _, png = cv2.imencode(".png", cv2.cvtColor(box_region(img, box), cv2.COLOR_RGB2BGR))
                name = CLASS_NAMES[label]
                write_bytes(output / split / name / f"{stem}-face{i}.png", png.tobytes())
                report.written[split, name] += 1


@dataclass
class PrepConfig:
    """`prepare_mask_dataset.py`'s settings (its flags' names): the one place their defaults are written."""
    source_path: str | None = None
    labels_dir: str | None = None
    metadata_dir: str | None = None
    images_dir: str | None = None
    output_path: str = "mask_dataset"
    train_per_class: int = 500
    test_fraction: float = 0.2
    min_face_size: float = 20
    seed: int = 0
    overwrite: bool = False
    progress: bool = True
    class_map: str | None = None


def run_prepare(**kwargs):
    """prepare_mask_dataset.py (PrepConfig's fields as keywords); returns the PrepReport."""
    c = PrepConfig(**kwargs)
    if c.source_path is None and c.labels_dir is None:
        raise UserError("nothing to prepare: give --source_path (with_mask/, without_mask/) and/or --labels_dir")
    check_range("--train_per_class", c.train_per_class, 0)
    check_range("--test_fraction", c.test_fraction, 0, 1)
    check_range("--min_face_size", c.min_face_size, 0)
    check_no_overlap(c.output_path, source_path=c.source_path, labels_dir=c.labels_dir, images_dir=c.images_dir,
                     metadata_dir=c.metadata_dir)
    output = check_output(c.output_path, c.overwrite)  # fail early, before any work
    if c.source_path is not None:
        class_folders(c.source_path)
    items = None
    if c.labels_dir is not None:
        from .labels import load_labels

        labels = load_labels(c.labels_dir, metadata_dir=c.metadata_dir, images_dir=c.images_dir, class_map=c.class_map)
        print(labels.report)
        items = labels.items
    report = PrepReport()
    with building(output) as build:
        if c.source_path is not None:
            split_class_folder(c.source_path, build, c.train_per_class, c.seed, report, c.progress)
        if items is not None:
            crop_labeled_photos(items, build, c.test_fraction, c.min_face_size, c.seed, report, c.progress)
        replace_splits(build, output)
    return report
