"""MTCNN fine-tuning on labeled frames: sample mining (samples), the multi-task loss with online hard-example
mining (losses), the stage-by-stage training loop and before/after evaluation (train), the script's work (run)."""
from .run import run_finetune
from .train import FinetuneResult, FinetuneSettings, finetune, split_frames

__all__ = ["run_finetune", "finetune", "FinetuneSettings", "FinetuneResult", "split_frames"]
