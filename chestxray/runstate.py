"""A training run's folder that no kill can break: every write atomic, one commit per epoch.

The run's state after each finished epoch lives in one folder, `resume/`:
`model.keras` (the model with its optimizer), `best.keras` (the best epoch so far)
and `state.json` (the epoch, the callbacks' counters, the history rows), written in
`resume.new/` and swapped in by renames; the previous state stays in
`resume.old/`. `history.csv` and `best.keras` in the run folder are published from
the committed state, atomically, after each commit and again at every restart.
The final files (`model.keras`, `model.weights.h5`, `loss.png`) are made from
the committed best model, so a restart after they were cut short makes them again.

Every file goes through `write_atomic` / `save_atomic`: a temporary file in the
same folder, flushed to disk, then `os.replace`. Killed at any instant, a file is
either its old whole self or its new whole self. TensorBoard's event files are
the exception: they are logs, appended as they go, and a cut one still reads.
"""

import json
import math
import os
import shutil

import keras
import pandas as pd

from .errors import SaveError, UserError

STATE = "state.json"


class DamagedState(UserError):
    """No saved state of a run's folder loads: its files were cut short or altered."""


# ----------------------------------------------------------------------------
# Atomic files.

def _fsync(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temporary(path):
    """A temporary name beside `path` that keeps its suffix (Keras checks `.keras`, `.weights.h5`)."""
    folder, name = os.path.split(path)
    return os.path.join(folder, f".tmp-{os.getpid()}-{name}")


def save_atomic(save, path):
    """`save(tmp)` writes the file under a temporary name; then it replaces `path` whole."""
    tmp = temporary(path)
    try:
        save(tmp)
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_atomic(path, data):
    """Text or bytes into `path`, atomically."""
    def save(tmp):
        with open(tmp, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)

    save_atomic(save, path)


def _link_or_copy(source, target):
    """A hard link where the file system allows (files here are never changed in place), else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def copy_atomic(source, path):
    """`source` to `path`, atomically (nothing to do when `path` is already that file)."""
    if os.path.exists(path) and os.path.samefile(source, path):
        return  # (rename() of two links to one file does nothing, and would leave the link behind)
    save_atomic(lambda tmp: _link_or_copy(source, tmp), path)


# ----------------------------------------------------------------------------
# The run's state.

class RunState(keras.callbacks.Callback):
    """Commits the run's state after each finished epoch and restores it at a restart.

    Keras' BackupAndRestore keeps neither the other callbacks' state (EarlyStopping's and
    ReduceLROnPlateau's counters) nor the history in step with the weights, and
    ModelCheckpoint and CSVLogger write in place. Here one commit holds all of it.

    `stateful`: {name: callback} whose counters are saved and restored. `monitor` and
    `mode` decide the best epoch (best.keras), as ModelCheckpoint(save_best_only) did.
    `ema`: the `EMAWeights` callback, if any: best.keras holds the averaged weights
    (the ones validated); the resume state holds the trained ones, with the average
    in the optimizer.
    """

    def __init__(self, out, stateful, monitor="val_loss", mode="min", ema=None):
        super().__init__()
        self.out, self.stateful, self.monitor, self.mode, self.ema = out, stateful, monitor, mode, ema
        self.folder = os.path.join(out, "resume")
        self.history_csv, self.best_path = os.path.join(out, "history.csv"), os.path.join(out, "best.keras")
        self.state = None  # the last committed state (dict), once loaded or committed

    # ------------------------------------------------------------ restart

    def _states(self):
        """(epoch, folder, state) of every saved state whose state.json reads, newest first;
        and {folder: why} of those found damaged."""
        found, damaged = [], {}
        for folder in (self.folder, self.folder + ".new", self.folder + ".old"):
            path = os.path.join(folder, STATE)
            if not os.path.exists(path):
                continue  # a commit not yet complete (state.json comes last), or none at all
            try:
                with open(path) as f:
                    state = json.load(f)
                found.append((int(state["epoch"]), folder, state))
            except (OSError, ValueError, KeyError, TypeError) as e:
                damaged[folder] = f"{path} ({type(e).__name__}: {e})"
        return sorted(found, key=lambda x: -x[0]), damaged

    def load(self):
        """The newest whole saved model (with its optimizer) and its state, or (None, None) on a
        fresh start. A damaged state (a file cut short) falls back to the one before it."""
        self._remove_leftovers()
        found, damaged = self._states()
        for epoch, folder, state in found:
            try:
                model = keras.models.load_model(os.path.join(folder, "model.keras"))
                if state.get("best_epoch") is not None:
                    keras.models.load_model(os.path.join(folder, "best.keras"))  # it must load too
            except Exception as e:  # a truncated zip, a missing file: the next state back, if any
                damaged[folder] = f"{folder} ({type(e).__name__}: {e})"
                continue
            if damaged:
                print(f"warning: damaged saved state {'; '.join(damaged.values())}: resuming from the state "
                      f"after epoch {epoch} instead")
            self._adopt(folder, damaged)
            self.state = state
            self.publish()
            return model, state
        if damaged:
            raise DamagedState(f"no saved state of {self.out} loads: {'; '.join(damaged.values())}. Move "
                               f"{self.folder}* away to start the run again from the beginning.")
        return None, None

    def _remove_leftovers(self):
        """Temporary files of a killed process (never anything else: only `temporary` names)."""
        for folder in (self.out, self.folder):
            if os.path.isdir(folder):
                for name in os.listdir(folder):
                    if name.startswith(".tmp-"):
                        os.remove(os.path.join(folder, name))

    def _adopt(self, folder, broken):
        """Make `folder` the current state, `resume/`: resume.new (a commit cut between its two
        renames: finish it) or resume.old (resume/ is damaged: keep it aside for a look)."""
        if folder == self.folder:
            return
        if os.path.exists(self.folder):
            if self.folder in broken:
                shutil.rmtree(self.folder + ".damaged", ignore_errors=True)
                os.replace(self.folder, self.folder + ".damaged")
            else:  # whole but older than resume.new: it becomes resume.old, as the commit would have made it
                shutil.rmtree(self.folder + ".old", ignore_errors=True)
                os.replace(self.folder, self.folder + ".old")
        os.replace(folder, self.folder)

    def on_train_begin(self, logs=None):
        if not self.state:
            return
        # After the other callbacks' own on_train_begin, which resets them.
        for name, callback in self.stateful.items():
            for key, value in self.state["callbacks"].get(name, {}).items():
                setattr(callback, key, value)

    # ------------------------------------------------------------ commit

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if not all(math.isfinite(float(logs.get(k, 0.0))) for k in ("loss", "val_loss")):
            return  # never commit a diverged state
        value = logs.get(self.monitor)
        previous = self.state or {"history": [], "best": None, "best_epoch": None}
        best = previous["best"]
        improved = value is not None and math.isfinite(value) and (
            best is None or (value < best if self.mode == "min" else value > best))
        state = {"epoch": epoch,
                 "best": float(value) if improved else previous["best"],
                 "best_epoch": epoch if improved else previous["best_epoch"],
                 "callbacks": {name: {key: getattr(callback, key) for key in _SAVED[type(callback)]}
                               for name, callback in self.stateful.items()},
                 "history": previous["history"] + [{"epoch": epoch, **logs}],
                 # EarlyStopping (before this callback) ends the run here: a restart must not go on.
                 "stopped": bool(getattr(self.model, "stop_training", False))}
        try:
            self._commit(state, improved)
        except OSError as e:
            done = f"epoch {previous['history'][-1]['epoch']}" if previous["history"] else "none yet"
            raise SaveError(e.errno, f"could not save the state of epoch {epoch} in {self.folder} "
                                     f"({e.strerror or e}). The last saved state ({done}) is untouched; make room "
                                     f"(or make {self.out} writable) and run the same command again to resume "
                                     "from it") from None
        self.state = state
        self.publish()

    def _commit(self, state, improved):
        new, old = self.folder + ".new", self.folder + ".old"
        shutil.rmtree(new, ignore_errors=True)
        os.makedirs(new)
        try:
            # best.keras first, while the averaged weights (the validated ones) are in the model.
            if improved:
                self.model.save(os.path.join(new, "best.keras"))
            elif os.path.exists(os.path.join(self.folder, "best.keras")):
                _link_or_copy(os.path.join(self.folder, "best.keras"), os.path.join(new, "best.keras"))
            if self.ema:
                self.ema.training_weights()
            self.model.save(os.path.join(new, "model.keras"))
            for name in ("best.keras", "model.keras"):
                if os.path.exists(os.path.join(new, name)):
                    _fsync(os.path.join(new, name))
            # last: it marks the commit whole. NumPy's numbers (in logs, counters) as Python's.
            write_atomic(os.path.join(new, STATE), json.dumps(state, default=lambda v: v.item()))
            _fsync(new)
        except BaseException:
            shutil.rmtree(new, ignore_errors=True)
            raise
        if os.path.exists(self.folder):
            shutil.rmtree(old, ignore_errors=True)
            os.replace(self.folder, old)
        os.replace(new, self.folder)  # killed between the two renames: load() finds resume.new
        _fsync(self.out)

    def publish(self):
        """history.csv and best.keras in the run folder, from the committed state."""
        write_atomic(self.history_csv, pd.DataFrame(self.state["history"]).to_csv(index=False))
        best = os.path.join(self.folder, "best.keras")
        if os.path.exists(best):
            copy_atomic(best, self.best_path)

    def best_model(self):
        """The committed best model (None before any epoch was committed)."""
        best = os.path.join(self.folder, "best.keras")
        return keras.models.load_model(best) if os.path.exists(best) else None


# What each stateful callback needs back after a restart.
_SAVED = {
    keras.callbacks.ReduceLROnPlateau: ["best", "wait", "cooldown_counter"],
    keras.callbacks.EarlyStopping: ["best", "wait", "best_epoch"],
}
