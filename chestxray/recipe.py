"""The training recipe: every setting that decides what a run learns, as one value."""

from dataclasses import dataclass, field, fields

from .augment import PRESETS
from .model import BACKBONES
from .preprocessing import MODES


def setting(default, help="", choices=None):
    """A field of the recipe, with what the command line says of it (`train`'s options are made
    from these)."""
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass(frozen=True)
class Recipe:
    """Everything that decides what a run learns (recorded in run.json).

    The defaults are the course's: a DenseNet121, Adam at 1e-4, the learning rate cut by 10
    when val_loss stalls, horizontal flips. `models/nih/README.md` gives the recipe of the
    shipped model.
    """

    epochs: int = setting(10)
    batch_size: int = setting(8, "per device; the global batch is this times the devices")
    lr: float = setting(1e-4, "(peak) learning rate")
    image_size: int = setting(320)
    backbone: str = setting("DenseNet121", "the convolutional base (keras.applications)", BACKBONES)
    weights: str = setting(None, "base weights: none (default), imagenet (downloads, needs internet) or a "
                                 ".h5/.weights.h5 file")
    standardize: str = setting("featurewise", "how images are standardised, in training and evaluation alike",
                               MODES)
    augment: str = setting("flip", "flip: horizontal flips; standard: flips, rotation, shift, zoom, contrast; "
                                   "strong: the same, more", tuple(PRESETS))
    schedule: str = setting("plateau", "plateau: cut the rate when the monitored value stalls; cosine: warm-up, "
                                       "then cosine decay to 0", ("plateau", "cosine"))
    warmup_epochs: float = setting(0.0, "cosine: epochs of linear warm-up from 0")
    weight_decay: float = setting(0.0, "> 0: AdamW (decoupled weight decay)")
    ema: float = setting(0.0, "> 0: validate, checkpoint and ship the weights' moving average with this "
                              "momentum, e.g. 0.99")
    monitor: str = setting("val_loss", "what picks the best epoch and stops early", ("val_loss", "val_auroc"))
    lr_patience: int = setting(2, "plateau: epochs without progress before the rate drops")
    lr_factor: float = setting(0.1)
    lr_min_delta: float = setting(1e-4, "smallest change that counts as progress")
    stop_patience: int = setting(5, "epochs without progress before stopping")
    seed: int = setting(0)
    sample_size: int = setting(100, "training images whose mean and std standardise featurewise")

    def __post_init__(self):
        for f in fields(self):
            if f.metadata["choices"] and getattr(self, f.name) not in f.metadata["choices"]:
                raise ValueError(f"{f.name} must be one of {', '.join(f.metadata['choices'])}, "
                                 f"not {getattr(self, f.name)!r}")
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
