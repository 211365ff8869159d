"""cctv.labels on the real exports in ../shared: every format reads to the same boxes as the VOC originals;
bad input is skipped and counted, or refused with a message naming the file."""
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from cctv.errors import UserError
from cctv.labels import DEFAULT_CLASS_MAP, load_labels, parse_class_map, to_suite_label, write_suite_label


@pytest.fixture(scope="module")
def data(shared_dir):
    return shared_dir / "data"


@pytest.fixture(scope="module")
def voc(data):
    """The original Pascal VOC labels, by image file name: the reference for every other format."""
    ls = load_labels(data / "facemask853" / "annotations")
    return {item.image_path.name: item for item in ls.items}


def assert_same(items, voc):
    for item in items:
        ref = voc[Path(item.key).name]
        assert (item.width, item.height) == (ref.width, ref.height), item.key
        np.testing.assert_array_equal(item.boxes, ref.boxes, err_msg=item.key)
        assert item.classes == ref.classes, item.key


def copy_2020_subset(data, dest, n):
    """The first n labels of the 2020 export (meta + labels) copied to dest; returns their meta files."""
    src = data / "suite_exports" / "facemask853_2020_format"
    metas = sorted((src / "meta").rglob("*.json"))[:n]
    for meta in metas:
        target = dest / meta.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(meta, target)
        label_id = json.loads(meta.read_text())["label_id"]
        (dest / "labels").mkdir(exist_ok=True)
        shutil.copy(src / "labels" / f"{label_id}.json", dest / "labels" / f"{label_id}.json")
    return [dest / m.relative_to(src) for m in metas]


def test_voc_maps_tool_classes_and_counts_every_box(data, voc):
    xml_objects = sum(p.read_text().count("<object>") for p in (data / "facemask853" / "annotations").glob("*.xml"))
    assert len(voc) == len(list((data / "facemask853" / "images").glob("*.jpg")))
    assert sum(len(item.boxes) for item in voc.values()) == xml_objects
    assert set(c for item in voc.values() for c in item.classes) == {"protected", "unprotected"}
    for item in voc.values():
        assert (item.boxes[:, 0] >= 0).all() and (item.boxes[:, 2] <= item.width).all()
        assert (item.boxes[:, 1] >= 0).all() and (item.boxes[:, 3] <= item.height).all()


def test_current_suite_export_equals_voc(data, voc):
    export = data / "suite_exports" / "facemask853"
    ls = load_labels(export, images_dir=data / "facemask853" / "images")
    assert ls.report.read == len(list((export / "meta").rglob("*.json"))) == len(voc)
    assert ls.report.format == "Suite export" and not ls.report.skipped
    assert ls.items[0].key.startswith("facemask853/")
    assert_same(ls.items, voc)
    # the VOC originals have boxes reaching past the image edge: both loads clip the same ones, and say so
    assert ls.report.clipped == load_labels(data / "facemask853" / "annotations").report.clipped > 0
    assert f"{ls.report.clipped} boxes clipped" in str(ls.report)


def test_2020_export_with_writeup_flags_equals_voc(data, voc):
    export = data / "suite_exports" / "facemask853_2020_format"
    # the write-up's finetune_mtcnn.py flags: --labels_dir <export>/labels --metadata_dir <export>/meta/<dataset>
    ls = load_labels(export / "labels", metadata_dir=export / "meta" / "cctv-mask-detector-live-data",
                     images_dir=data / "facemask853" / "images")
    assert ls.report.format == "Suite export (2020)"
    assert len(ls) == len(list((export / "labels").glob("*.json")))
    assert_same(ls.items, voc)
    assert len(load_labels(export, images_dir=data / "facemask853" / "images")) == len(ls)


def test_spb_download_layout_reads_its_own_images(data, voc):
    download = data / "suite_exports" / "facemask853_spb_download"
    ls = load_labels(download)
    assert ls.report.format == "spb download"
    assert len(ls) == len(list(download.glob("*/*.json")))
    for item in ls.items:
        assert item.image_path.parent == download / "facemask853"
    assert_same(ls.items, voc)


def test_siesta_export_equals_current(data, voc, tmp_path):
    """Pre-0.4 'siesta' labels: top-level objects[] with className / annotationType / annotation.coord."""
    export = data / "suite_exports" / "facemask853"
    metas = sorted((export / "meta").rglob("*.json"))[:15]
    for meta in metas:
        (tmp_path / "meta" / "ds").mkdir(parents=True, exist_ok=True)
        (tmp_path / "labels").mkdir(exist_ok=True)
        shutil.copy(meta, tmp_path / "meta" / "ds" / meta.name)
        label_id = json.loads(meta.read_text())["label_id"]
        current = json.loads((export / "labels" / f"{label_id}.json").read_text())
        siesta = {"objects": [{"id": o["id"], "className": o["class_name"], "annotationType": "box",
                               "annotation": {"coord": o["annotation"]["coord"]}} for o in current["result"]["objects"]]}
        (tmp_path / "labels" / f"{label_id}.json").write_text(json.dumps(siesta))
    ls = load_labels(tmp_path, images_dir=data / "facemask853" / "images")
    assert ls.report.format == "Suite export (pre-0.4 siesta)" and len(ls) == 15
    assert_same(ls.items, voc)


def test_zip_of_an_export_equals_the_folder(data, voc, tmp_path):
    download = data / "suite_exports" / "facemask853_spb_download"
    archive = tmp_path / "download.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in sorted(download.rglob("*")):
            z.write(path, Path("facemask853_spb_download") / path.relative_to(download))
    with load_labels(archive) as ls:
        assert len(ls) == len(load_labels(download))
        assert_same(ls.items, voc)
        extracted = ls.items[0].image_path
        assert extracted.is_file()
    assert not extracted.exists()  # the extracted copy goes away with the LabelSet


@pytest.mark.parametrize("member", ["../escaped.json", "/tmp/absolute-escape.json", "a/../../escaped.json"])
def test_zip_member_escaping_the_folder_is_refused(tmp_path, member):
    archive = tmp_path / "inside" / "evil.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("project.json", "{}")
        z.writestr(member, '{"result": {"objects": []}}')
    with pytest.raises(UserError, match=rf"{archive}.*'{member}' escapes"):
        load_labels(archive)
    assert not (tmp_path / "escaped.json").exists() and not Path("/tmp/absolute-escape.json").exists()


def test_coco_json_equals_voc(data, voc, tmp_path):
    names = sorted(voc)[:25]
    categories = {"with_mask": 1, "without_mask": 2}
    doc = {"images": [], "annotations": [], "categories": [{"id": i, "name": n} for n, i in categories.items()]}
    for image_id, name in enumerate(names):
        ref = voc[name]
        doc["images"].append({"id": image_id, "file_name": name, "width": ref.width, "height": ref.height})
        for (x1, y1, x2, y2), cls in zip(ref.boxes.tolist(), ref.classes):
            doc["annotations"].append({"id": len(doc["annotations"]), "image_id": image_id, "iscrowd": 0,
                                       "category_id": categories["with_mask" if cls == "protected" else "without_mask"],
                                       "bbox": [x1, y1, x2 - x1, y2 - y1]})
    doc["images"].append({"id": 99, "file_name": "not_there.jpg", "width": 10, "height": 10})
    doc["images"].append({"id": 98, "file_name": "../../escape.jpg", "width": 10, "height": 10})
    (tmp_path / "instances.json").write_text(json.dumps(doc))
    ls = load_labels(tmp_path / "instances.json", images_dir=data / "facemask853" / "images")
    assert ls.report.format == "COCO" and len(ls) == 25
    assert_same(ls.items, voc)
    assert "image 99" in ls.report.skipped["image missing"][0]
    assert "image 98" in ls.report.skipped["path escaping the export folder"][0]


def test_yolo_txt_with_data_yaml_equals_voc(data, voc, tmp_path):
    labels = tmp_path / "labels"
    labels.mkdir()
    (tmp_path / "data.yaml").write_text("path: .\nnames:\n  0: mask\n  1: no-mask\n")
    names = sorted(voc)[:25]
    for name in names:
        ref = voc[name]
        lines = []
        for (x1, y1, x2, y2), cls in zip(ref.boxes.tolist(), ref.classes):
            cx, cy = (x1 + x2) / 2 / ref.width, (y1 + y2) / 2 / ref.height
            lines.append(f"{0 if cls == 'protected' else 1} {cx:.6f} {cy:.6f} "
                         f"{(x2 - x1) / ref.width:.6f} {(y2 - y1) / ref.height:.6f}")
        (labels / name).with_suffix(".txt").write_text("\n".join(lines) + "\n")
    ls = load_labels(labels, images_dir=data / "facemask853" / "images")
    assert ls.report.format == "YOLO" and len(ls) == 25
    for item in ls.items:
        ref = voc[item.image_path.name]
        np.testing.assert_allclose(item.boxes, ref.boxes, atol=0.01)
        assert item.classes == ref.classes


# --- bad input -------------------------------------------------------------------------------------
def test_bad_labels_are_skipped_counted_and_named(data, tmp_path):
    metas = copy_2020_subset(data, tmp_path, 6)
    label_of = {m: tmp_path / "labels" / (json.loads(m.read_text())["label_id"] + ".json") for m in metas}
    label_of[metas[0]].write_text('{"result": {"objects": [')  # malformed JSON
    escaping = json.loads(metas[1].read_text())
    escaping["data_key"] = "../../../../etc/passwd"
    metas[1].write_text(json.dumps(escaping))
    escaping_label = json.loads(metas[2].read_text())
    escaping_label["label_id"] = "../../outside"
    metas[2].write_text(json.dumps(escaping_label))
    images = tmp_path / "images"
    images.mkdir()
    for meta in metas[3:5]:  # metas[5]'s image is left out
        key = json.loads(meta.read_text())["data_key"]
        shutil.copy(data / "facemask853" / "images" / key, images / key)

    ls = load_labels(tmp_path, images_dir=images)

    report = ls.report
    assert report.read == 2 and report.skipped_count == 4
    assert len(report.skipped["malformed JSON"]) == 1
    assert str(label_of[metas[0]]) in report.skipped["malformed JSON"][0]
    escaped = report.skipped["path escaping the export folder"]
    assert len(escaped) == 2 and str(metas[1]) in escaped[0] + escaped[1] and str(metas[2]) in escaped[0] + escaped[1]
    assert str(metas[5]) in report.skipped["image missing"][0]
    assert "read 2 labels" in str(report) and "skipped 4" in str(report) and "1 malformed JSON" in str(report)
    assert all(item.image_path.parent == images for item in ls.items)


def test_voc_bad_files_are_skipped_with_their_reason(data, tmp_path):
    annotations = data / "facemask853" / "annotations"
    for name in ("maksssksksss0.xml", "maksssksksss1.xml"):
        shutil.copy(annotations / name, tmp_path / name)
    (tmp_path / "broken.xml").write_text("<annotation><filename>x.jpg</filename>")
    (tmp_path / "gone.xml").write_text((annotations / "maksssksksss2.xml").read_text()
                                       .replace("maksssksksss2.jpg", "gone.jpg"))
    ls = load_labels(tmp_path, images_dir=data / "facemask853" / "images")
    assert sorted(item.key for item in ls.items) == ["maksssksksss0.jpg", "maksssksksss1.jpg"]
    assert ls.report.skipped["malformed XML"][0].startswith(str(tmp_path / "broken.xml"))
    assert ls.report.skipped["image missing"][0].startswith(str(tmp_path / "gone.xml"))


def test_boxes_outside_the_image_are_clipped_or_dropped_and_counted(tmp_path, data):
    image = tmp_path / "frame.jpg"
    shutil.copy(data / "facemask853" / "images" / "maksssksksss0.jpg", image)  # 512x366
    boxes = [[-10, -5, 40, 50], [500, 300, 600, 400], [600, 10, 700, 20], [100, 100, 120, 130]]
    write_suite_label(tmp_path / "frame.jpg.json", np.zeros((0, 4)), [], 512, 366)
    doc = {"result": {"objects": [{"class_name": "protected", "annotation_type": "box",
                                   "annotation": {"coord": {"x": x1, "y": y1, "width": x2 - x1, "height": y2 - y1}}}
                                  for x1, y1, x2, y2 in boxes]}}
    (tmp_path / "frame.jpg.json").write_text(json.dumps(doc))
    ls = load_labels(tmp_path)
    np.testing.assert_array_equal(ls.items[0].boxes, [[0, 0, 40, 50], [500, 300, 512, 366], [100, 100, 120, 130]])
    assert (ls.report.clipped, ls.report.dropped) == (2, 1)
    assert "2 boxes clipped to the image, 1 outside it dropped" in str(ls.report)


def test_sidecar_whose_data_key_escapes_is_skipped(tmp_path, data):
    shutil.copy(data / "facemask853" / "images" / "maksssksksss0.jpg", tmp_path / "a.jpg")
    shutil.copy(data / "facemask853" / "images" / "maksssksksss1.jpg", tmp_path / "b.jpg")
    write_suite_label(tmp_path / "a.jpg.json", [[1, 2, 30, 40]], ["protected"], 512, 366)
    (tmp_path / "b.jpg.json").write_text(json.dumps({"data_key": "../../b.jpg", "result": {"objects": []}}))
    ls = load_labels(tmp_path)
    assert [item.key for item in ls.items] == ["a.jpg"]
    assert str(tmp_path / "b.jpg.json") in ls.report.skipped["path escaping the export folder"][0]


def test_empty_export_and_all_skipped_are_errors_naming_the_folder(tmp_path, data):
    (tmp_path / "meta").mkdir()
    (tmp_path / "labels").mkdir()
    with pytest.raises(UserError, match=rf"{tmp_path / 'meta'}.*empty"):
        load_labels(tmp_path)
    empty = tmp_path / "nothing"
    empty.mkdir()
    with pytest.raises(UserError, match="empty"):
        load_labels(empty)
    copy_2020_subset(data, tmp_path / "x", 3)
    with pytest.raises(UserError, match=r"read 0 labels.*skipped 3 \(3 image missing\)"):
        load_labels(tmp_path / "x", images_dir=empty)
    with pytest.raises(UserError, match="no such labels"):
        load_labels(tmp_path / "missing")


def test_unknown_class_is_an_error_listing_known_ones_until_mapped(tmp_path, data):
    shutil.copy(data / "facemask853" / "images" / "maksssksksss0.jpg", tmp_path / "a.jpg")
    doc = {"result": {"objects": [
        {"class_name": "helmet", "annotation_type": "box", "annotation": {"coord": {"x": 1, "y": 1, "width": 9, "height": 9}}},
        {"class_name": "With Mask", "annotation_type": "box", "annotation": {"coord": {"x": 5, "y": 5, "width": 9, "height": 9}}},
        {"class_name": "with_mask", "annotation_type": "polygon", "annotation": {"coord": {"points": []}}}]}}
    (tmp_path / "a.jpg.json").write_text(json.dumps(doc))
    with pytest.raises(UserError, match=r"a\.jpg\.json: unknown class 'helmet'.*Known classes: .*with_mask.*without_mask"):
        load_labels(tmp_path)
    ls = load_labels(tmp_path, class_map=parse_class_map("helmet=unprotected"))
    assert ls.items[0].classes == ["unprotected", "protected"]
    assert ls.report.ignored == {"polygon objects": 1}
    ls = load_labels(tmp_path, class_map={"helmet": "ignore"})
    assert ls.items[0].classes == ["protected"]
    with pytest.raises(UserError, match="use protected, unprotected or ignore"):
        load_labels(tmp_path, class_map={"helmet": "hat"})
    assert DEFAULT_CLASS_MAP["mask_weared_incorrect"] == "unprotected"


# --- writing (pre-labels) --------------------------------------------------------------------------
def test_suite_label_carries_the_projects_class_ids_and_reads_back(tmp_path, data):
    project = json.loads((data / "suite_exports" / "facemask853_spb_download" / "project.json").read_text())
    ids = {c["name"]: c["id"] for c in project["object_detection"]["object_classes"]}
    boxes = np.array([[10.5, 20.25, 50.0, 70.0], [100, 90, 600, 130]], np.float32)  # the second leaves the image
    label = to_suite_label(boxes, ["protected", "unprotected"], 512, 366, label_interface=project)
    objects = label["result"]["objects"]
    assert [o["class_id"] for o in objects] == [ids["protected"], ids["unprotected"]]
    assert objects[0]["annotation"]["coord"] == {"x": 10.5, "y": 20.25, "width": 39.5, "height": 49.75}
    assert objects[1]["annotation"]["coord"]["x"] + objects[1]["annotation"]["coord"]["width"] == 512
    assert label == to_suite_label(boxes, ["protected", "unprotected"], 512, 366, label_interface=project)

    shutil.copy(data / "facemask853" / "images" / "maksssksksss0.jpg", tmp_path / "f.jpg")
    write_suite_label(tmp_path / "f.jpg.json", boxes, ["protected", "unprotected"], 512, 366, project)
    item = load_labels(tmp_path).items[0]
    np.testing.assert_array_equal(item.boxes, [[10.5, 20.25, 50, 70], [100, 90, 512, 130]])
    assert item.classes == ["protected", "unprotected"]
    assert sorted(tmp_path.iterdir()) == [tmp_path / "f.jpg", tmp_path / "f.jpg.json"]  # no temp file left

    no_classes = {"object_detection": {"object_classes": [{"id": "1", "name": "person", "annotation_type": "box"}]}}
    with pytest.raises(UserError, match="no box class"):
        to_suite_label(boxes, ["protected", "unprotected"], 512, 366, label_interface=no_classes)
    with pytest.raises(ValueError):
        to_suite_label(boxes, ["with_mask", "unprotected"], 512, 366)
