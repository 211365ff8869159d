"""Building `mask_dataset/{train,test}/{protected,unprotected}` from a Kaggle-style folder (with_mask/,
without_mask/) and/or labeled photos (each labeled face cropped to its own file)."""
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from .atomic import write_bytes
from .classifier import CLASS_NAMES
from .detection_eval import short_side
from .errors import UserError
from .face_dataset import box_region, class_folders, iter_labeled_images, split_by_image
from .images import IMAGE_SUFFIXES, list_images, load_image

SPLITS = ("train", "test")


@dataclass
class PrepReport:
    written: Counter = field(default_factory=Counter)  # (split, class) -> files
    unreadable: list = field(default_factory=list)
    too_small: tuple = None  # (labeled faces left out by --min_face_size, all labeled faces, the size)

    def table(self) -> str:
        rows = ["split  " + "  ".join(f"{c:>11}" for c in CLASS_NAMES)]
        for split in SPLITS:
            rows.append(f"{split:<6} " + "  ".join(f"{self.written[split, c]:>11}" for c in CLASS_NAMES))
        if self.too_small:
            left_out, labeled, size = self.too_small
            rows.append(f"labeled faces under {size:g} px (short side) left out: {left_out} of {labeled} "
                        f"(--min_face_size)")
        rows.append(f"unreadable files skipped: {len(self.unreadable)}")
        rows += [f"  {f}" for f in self.unreadable[:10]]
        if len(self.unreadable) > 10:
            rows.append(f"  ... and {len(self.unreadable) - 10} more")
        return "\n".join(rows)


def prepare_output(output_path, overwrite):
    """Create the four class folders; refuse (or, with overwrite, empty them) if they already hold images."""
    output = Path(output_path)
    folders = [output / s / c for s in SPLITS for c in CLASS_NAMES]
    existing = [f for d in folders if d.is_dir() for f in d.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES]
    if existing and not overwrite:
        raise UserError(f"{output}: already holds {len(existing)} images in its split folders "
                        f"(use --overwrite to replace them)")
    for f in existing:
        f.unlink()
    for d in folders:
        d.mkdir(parents=True, exist_ok=True)
    return output


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
            shutil.copyfile(f, output / split / name / f.name)
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


def run_prepare(source_path=None, labels_dir=None, metadata_dir=None, images_dir=None, output_path="mask_dataset",
                train_per_class=500, test_fraction=0.2, min_face_size=20, seed=0, overwrite=False, progress=True):
    if source_path is None and labels_dir is None:
        raise UserError("nothing to prepare: give --source_path (with_mask/, without_mask/) and/or --labels_dir")
    if source_path is not None:
        class_folders(source_path)  # fail early, before touching the output
    items = None
    if labels_dir is not None:
        from .labels import load_labels

        labels = load_labels(labels_dir, metadata_dir=metadata_dir, images_dir=images_dir)
        print(labels.report)
        items = labels.items
    output = prepare_output(output_path, overwrite)
    report = PrepReport()
    if source_path is not None:
        split_class_folder(source_path, output, train_per_class, seed, report, progress)
    if items is not None:
        crop_labeled_photos(items, output, test_fraction, min_face_size, seed, report, progress)
    return report
