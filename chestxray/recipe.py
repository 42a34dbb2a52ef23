"""The training recipe: every setting that decides what a run learns, as one value."""

from dataclasses import dataclass

from .augment import Augmentation
from .preprocessing import MODES


@dataclass(frozen=True)
class Recipe:
    """Everything that decides what a run learns (recorded in run.json).

    The defaults are the course's: Adam at 1e-4, the learning rate cut by 10 when
    val_loss stalls, horizontal flips. `models/nih/README.md` gives the recipe of
    the shipped model.
    """

    epochs: int = 10
    batch_size: int = 8  # per device; the global batch is this times the devices
    lr: float = 1e-4
    image_size: int = 320
    weights: str = None  # base weights: None, "imagenet" or a file
    standardize: str = "featurewise"  # the same for training and evaluation (preprocessing.py)
    augment: str = "flip"  # an Augmentation.named preset: none, flip, standard
    schedule: str = "plateau"  # plateau: ReduceLROnPlateau; cosine: warm-up then cosine decay to 0
    warmup_epochs: float = 0.0  # cosine only: linear warm-up from 0
    weight_decay: float = 0.0  # > 0: AdamW (decoupled weight decay)
    ema: float = 0.0  # > 0: evaluate, checkpoint and ship the weights' moving average (this momentum)
    monitor: str = "val_loss"  # val_loss or val_auroc: what picks the best epoch and stops early
    lr_patience: int = 2  # plateau only: epochs without progress before the rate drops
    lr_factor: float = 0.1
    lr_min_delta: float = 1e-4
    stop_patience: int = 5  # epochs without progress before stopping
    seed: int = 0
    sample_size: int = 100  # training images whose mean and std standardise featurewise

    def __post_init__(self):
        Augmentation.named(self.augment)
        if self.standardize not in MODES:
            raise ValueError(f"standardize must be one of {MODES}, not {self.standardize!r}")
        if self.schedule not in ("plateau", "cosine"):
            raise ValueError(f"schedule must be plateau or cosine, not {self.schedule!r}")
        if self.monitor not in ("val_loss", "val_auroc"):
            raise ValueError(f"monitor must be val_loss or val_auroc, not {self.monitor!r}")
        if not 0 <= self.ema < 1:
            raise ValueError(f"ema is a momentum in [0, 1), not {self.ema}")

    @property
    def mode(self):
        """'min' or 'max': which way the monitored value improves."""
        return "max" if self.monitor == "val_auroc" else "min"

    def optimizer(self, steps_per_epoch):
        """Adam (AdamW with weight decay), at a fixed rate or on the warm-up + cosine schedule."""
        import keras

        lr = self.lr
        if self.schedule == "cosine":
            warmup = int(round(self.warmup_epochs * steps_per_epoch))
            lr = keras.optimizers.schedules.CosineDecay(
                0.0 if warmup else self.lr, max(1, self.epochs * steps_per_epoch - warmup),
                warmup_target=self.lr if warmup else None, warmup_steps=warmup)
        ema = {"use_ema": True, "ema_momentum": self.ema} if self.ema else {}
        if self.weight_decay:
            return keras.optimizers.AdamW(lr, weight_decay=self.weight_decay, **ema)
        return keras.optimizers.Adam(lr, **ema)
