"""Each script's settings are one dataclass (issue #19): its command line takes every default from it, and a
keyword it lacks is an error naming it, never silently dropped."""
import importlib
from dataclasses import MISSING, fields

import pytest

from cctv.active_learning import LoopConfig
from cctv.active_learning.training import TrainSettings
from cctv.finetune.run import FinetuneConfig
from cctv.mask_dataset_prep import PrepConfig
from cctv.mask_training import TrainConfig
from cctv.pipeline import JobConfig

# script, its settings dataclass, the flags it requires, and its flags that are not settings of the run
SCRIPTS = {
    "cctv_mask_detector": (JobConfig, [], set()),
    "active_learning": (LoopConfig, ["run"], {"command", "nice"}),  # --nice: how main() runs, not the loop's
    "train_mask_detector": (TrainConfig, [], set()),
    "finetune_mtcnn": (FinetuneConfig, ["--labels_dir", "labels"], set()),
    "prepare_mask_dataset": (PrepConfig, [], set()),
    "test_detector": ("ScoreConfig", [], set()),
    "footages_to_frames": ("FramesConfig", ["--footage_dir", "f", "--output_dir", "o"], set()),
    "evaluate_models": ("CompareConfig", ["--labels_dir", "labels"], set()),
    "report": ("ReportConfig", ["--runs", "r"], set()),
}
# flags whose default is resolved when the job starts, so the flag's default is None and not the field's
RESOLVED_AT_RUN = {("cctv_mask_detector", "detector_model_path")}  # None: the current version (models/current.json)


def _settings_class(module, config):
    return getattr(module, config) if isinstance(config, str) else config


def _same(a, b):
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return list(a) == list(b)
    return a == b


def _defaults(cls):
    return {f.name: f.default if f.default is not MISSING else f.default_factory() for f in fields(cls)
            if f.default is not MISSING or f.default_factory is not MISSING}


@pytest.mark.parametrize("script", SCRIPTS)
def test_flag_defaults_are_the_settings_dataclass_defaults(script):
    module = importlib.import_module(script)
    config, argv, not_settings = SCRIPTS[script]
    cls = _settings_class(module, config)
    parsed = vars(module.parse_opt(argv))
    if cls is LoopConfig:  # the fine-tuning flags are its `train` settings
        defaults = {**_defaults(LoopConfig), **_defaults(TrainSettings)}
        built = module.build_config(**{k: v for k, v in parsed.items() if k not in not_settings})
        assert built == LoopConfig(), "the loop the command line builds without flags is LoopConfig()"
    else:
        defaults = _defaults(cls)
    # every flag is a setting: run(**vars(opt)) passes them all
    assert not set(parsed) - set(defaults) - not_settings - {f.name for f in fields(cls)}
    compared = 0
    for name, value in parsed.items():
        if name in defaults and (script, name) not in RESOLVED_AT_RUN and name != "spb_ready_statuses":
            assert _same(value, defaults[name]), f"--{name}: flag default {value!r}, dataclass {defaults[name]!r}"
            compared += 1
    assert compared >= len(defaults) // 2


def test_the_documented_work_folder_is_the_loops_default():
    assert LoopConfig().workdir == "runs/active_learning"  # README: runs/active_learning/{batches,history.jsonl}


@pytest.mark.parametrize("script, call", [
    ("cctv_mask_detector", lambda m: m.run(footage_path="x.mp4", tresholds=[0.1, 0.2, 0.2])),
    ("cctv_mask_detector", lambda m: m.run(footage_path=["a.mp4", "b.mp4"], tresholds=[0.1, 0.2, 0.2])),  # Ray
    ("active_learning", lambda m: m.run("run", workdir="w", tresholds=1)),
    ("active_learning", lambda m: m.run("status", workdir="w", tresholds=1)),
    ("train_mask_detector", lambda m: m.run(train_examples_path=["x"], tresholds=1)),
    ("finetune_mtcnn", lambda m: m.run(labels_dir="x", tresholds=1)),
    ("prepare_mask_dataset", lambda m: m.run(source_path="x", tresholds=1)),
    ("test_detector", lambda m: m.run(test_examples_path="x", tresholds=1)),
    ("footages_to_frames", lambda m: m.run(footage_dir="x", output_dir="y", tresholds=1)),
    ("evaluate_models", lambda m: m.run(labels_dir="x", tresholds=1)),
    ("report", lambda m: m.run(runs=["x"], tresholds=1)),
])
def test_a_mistyped_keyword_is_an_error_naming_it(script, call, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing a run might start is written into the repository
    with pytest.raises(TypeError, match="tresholds"):
        call(importlib.import_module(script))


@pytest.mark.parametrize("script, required", [
    ("cctv_mask_detector", []), ("finetune_mtcnn", ["--labels_dir", "l"]), ("evaluate_models", ["--labels_dir", "l"])])
def test_thresholds_are_read_the_same_in_both_documented_forms(script, required):
    from cctv.cli import parse_thresholds

    module = importlib.import_module(script)
    spaced = module.parse_opt(required + ["--thresholds", "0.1", "0.2", "0.3"]).thresholds
    commas = module.parse_opt(required + ["--thresholds", "0.1,0.2,0.3"]).thresholds
    assert parse_thresholds(spaced) == parse_thresholds(commas) == [0.1, 0.2, 0.3]


@pytest.mark.parametrize("value", [["0.6", "0.7"], "0.6,0.7", ["0.6", "x", "0.7"], "0.6,0.7,1.5", [0.6, 0.7, 0.7, 0.7]])
def test_bad_thresholds_are_one_error_naming_the_flag(value):
    from cctv.cli import parse_thresholds
    from cctv.errors import UserError

    with pytest.raises(UserError, match="--thresholds: expected three numbers"):
        parse_thresholds(value)


@pytest.mark.parametrize("script, required", [
    ("cctv_mask_detector", []), ("footages_to_frames", ["--footage_dir", "f", "--output_dir", "o"])])
def test_class_threshold_and_threshold_are_one_setting(script, required):
    module = importlib.import_module(script)
    assert module.parse_opt(required + ["--class_threshold", "0.3"]).class_threshold == 0.3
    assert module.parse_opt(required + ["--threshold", "0.4"]).class_threshold == 0.4


def test_one_device_check_for_every_script():
    from cctv.cli import check_device
    from cctv.errors import UserError

    assert check_device(None) == check_device("cpu") == "cpu"
    with pytest.raises(UserError, match="--device gpu0: not a device"):
        check_device("gpu0")
    with pytest.raises(UserError, match="--device cuda:99"):
        check_device("cuda:99")
