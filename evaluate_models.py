"""Compare face detectors on your own labeled frames: the pretrained MTCNN, the shipped CCTV model and a
given one, side by side: AP@0.5, recall of masked and unmasked faces, false boxes per frame, by face size.

    python evaluate_models.py --labels_dir my_export/labels --metadata_dir my_export/meta/my-dataset \\
        --images_dir frames --mtcnn_model_path runs/active_learning/candidate_mtcnn.pt
"""
import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cctv.errors import cli_main  # noqa: E402
from cctv.threads import set_threads  # noqa: E402


def run(labels_dir, metadata_dir=None, images_dir=None, mtcnn_model_path=None, shipped_mtcnn_model_path=None,
        min_face_size=None, thresholds=None, min_size=0.0, class_map=None, threads=2, device="cpu", progress=True):
    """Print and return the comparison ({model: {band: DetectionMetrics}})."""
    import torch

    from cctv.finetune.run import load_labeled_frames, parse_thresholds
    from cctv.model_eval import compare, default_specs, format_comparison

    if threads:
        torch.set_num_threads(threads)
    if thresholds is not None and not isinstance(thresholds, (list, tuple)):
        thresholds = parse_thresholds(thresholds)
    items = load_labeled_frames(labels_dir, metadata_dir, images_dir, class_map)
    specs = default_specs(mtcnn_model_path, shipped_mtcnn_model_path, min_face_size, thresholds)
    results = compare(specs, items, min_size, device, progress)
    print(format_comparison(results, specs))
    return results


def parse_opt(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--labels_dir", required=True, help="labels in any format cctv.labels reads (Suite, COCO, VOC, YOLO)")
    p.add_argument("--metadata_dir", default=None, help="the Suite export's meta/<dataset> folder, if it has one")
    p.add_argument("--images_dir", default=None, help="folder with the labeled images")
    p.add_argument("--mtcnn_model_path", default=None, help="an MTCNN checkpoint to compare (e.g. fine-tuned)")
    p.add_argument("--shipped_mtcnn_model_path", default=None, help="the shipped model (default models/cctv_mtcnn.pt)")
    p.add_argument("--min_face_size", type=float, default=None,
                   help="run every model at this min_face_size (default: each at its recorded setting)")
    p.add_argument("--thresholds", default=None, help="run every model at these thresholds, e.g. 0.6,0.7,0.7")
    p.add_argument("--min_size", type=float, default=0.0, help="ignore labeled faces smaller than this (px)")
    p.add_argument("--class_map", default=None, help="extra label class names, e.g. helmet=protected")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    return p.parse_args(argv)


@cli_main
def main(opt):
    set_threads(opt.threads)
    run(**vars(opt))


if __name__ == "__main__":
    main(parse_opt())
