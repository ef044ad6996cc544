"""Training: the one loop, the slices it samples, augmentation, losses, fine-tuning and dataset training."""

from .answer import ANSWERS, answer_scores, choose_answer, describe_answer
from .augment import augment_batch
from .dataset import TrainSummary, split_cases, train_dataset
from .finetune import TrainResult, finetune, short_run_warmup
from .loop import StepReport, cosine_lr, default_supervision, fit, run_steps, scheduled_lr
from .losses import deep_supervision_loss, soft_dice_loss
from .slice_set import SliceSet

__all__ = [
    "ANSWERS",
    "SliceSet",
    "StepReport",
    "TrainResult",
    "TrainSummary",
    "answer_scores",
    "augment_batch",
    "choose_answer",
    "cosine_lr",
    "deep_supervision_loss",
    "default_supervision",
    "describe_answer",
    "finetune",
    "fit",
    "run_steps",
    "scheduled_lr",
    "short_run_warmup",
    "soft_dice_loss",
    "split_cases",
    "train_dataset",
]
