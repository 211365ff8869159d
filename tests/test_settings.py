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
