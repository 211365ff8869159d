"""What the scripts tell a new user: what was left out, which models run, why nothing happened."""
import numpy as np

from cctv.detection_eval import short_side


def test_prepare_reports_how_many_labeled_faces_the_size_rule_left_out(shared_dir, tmp_path):
    from cctv.labels import load_labels
    from cctv.mask_dataset_prep import run_prepare

    export = shared_dir / "data/suite_exports/facemask853_2020_format"
    args = dict(labels_dir=export / "labels", metadata_dir=export / "meta/cctv-mask-detector-live-data",
                images_dir=shared_dir / "data/facemask853/images")
    items = load_labels(**args).items
    sizes = np.concatenate([short_side(item.boxes) for item in items])
    report = run_prepare(**args, output_path=tmp_path / "out", min_face_size=20, progress=False)
    written = sum(report.written.values())
    assert report.too_small == ((sizes < 20).sum(), len(sizes), 20) and written == (sizes >= 20).sum()
    assert f"left out: {(sizes < 20).sum()} of {len(sizes)}" in report.table()
