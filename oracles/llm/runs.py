r"""The helpers of :class:`~oracles.llm.GRPOOracle` around one call: the run directory (call tags,
solution records, orphaned temporary directories, the work directory that holds a call's
checkpoints), the declared error, the KL anchor of a warm start, and the token count of a
training log."""

import fcntl
import glob
import hashlib
import json
import os
import shutil
import warnings

import numpy as np

from palmopt.oracle import Solution

SOLUTION = "solution.json"
#: Suffix of a call's work directory (checkpoints, lock, the launch log of a failed call).
PARTIAL = ".partial"
#: The failed launch's log, kept in the work directory.
LAUNCH_LOG = "launch.log"


def _check_error(error):
    """``None`` (undeclared) or a pair ``(eta_mult, eta_add)`` of floats in ``[0, 1)``."""
    if error is None:
        return None
    try:
        pair = tuple(float(e) for e in error)
    except TypeError:
        raise TypeError(f"`error` must be None or a pair (eta_mult, eta_add); got {error!r}.") from None
    if len(pair) != 2 or not all(np.isfinite(e) and 0 <= e < 1 for e in pair):
        raise ValueError(f"`error` must be None or a pair (eta_mult, eta_add) of numbers in [0, 1); got {error!r}.")
    return pair


def _solution(record, call_dir):
    """The Solution of a completed call read from disk (``info["cached"]`` is True)."""
    se = record.get("stderr", record["info"].get("stderr"))  # calls written before Solution.stderr kept it in info
    info = dict(record["info"], cached=True)
    info.pop("stderr", None)
    return Solution(values=record["values"], policy=os.path.join(call_dir, "adapter"), info=info, stderr=se)


def _commit(tmp, final, record):
    """Write ``record`` as ``tmp/solution.json``, then rename ``tmp`` to ``final`` (replacing it)."""
    with open(os.path.join(tmp, SOLUTION), "w") as f:
        json.dump(record, f, indent=1)
    if os.path.exists(final):
        shutil.rmtree(final)
    os.replace(tmp, final)


def _remove_orphans(final):
    """Delete the temporary directories of calls to ``final`` whose process is gone (killed mid-call).

    Only ``<final>.tmp-<pid>-<ns>`` directories are candidates; the work directory
    ``<final>.partial`` (a killed call's checkpoints) is left for :class:`PartialCall`.
    """
    parent, name = os.path.split(final)
    for entry in os.listdir(parent):
        if not entry.startswith(name + ".tmp-"):
            continue
        try:
            pid = int(entry[len(name) + 5 :].split("-")[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)
        except (ValueError, PermissionError, OSError):
            continue


def _anchor_reference_to_base(model):
    """Make TRL's frozen ``"ref"`` adapter the base model; return how many tensors were zeroed.

    Warm-started from a neighbour's adapter with ``beta > 0``, TRL copies that adapter as the KL
    reference (``"ref"``), so the KL term would anchor the policy to the neighbour, and the
    answer at ``w`` would depend on which call came first.  A LoRA whose ``B`` matrices are zero
    adds nothing, so zeroing them makes the reference the base model, as in a fresh call.
    """
    import torch

    zeroed = 0
    with torch.no_grad():
        for name, param in model.named_parameters():
            if ".ref." in name and "lora_B" in name:
                param.zero_()
                zeroed += 1
    return zeroed


def _train_completion_tokens(log_path, cfg):
    """Completion tokens sampled during training (by all processes), from TRL's logged mean completion length."""
    try:
        with open(log_path) as f:
            log = json.load(f)
    except (OSError, ValueError):
        return 0
    # TRL logs means over all processes' completions
    per_step = cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps * cfg.processes
    return int(round(sum(h.get("completions/mean_length", 0.0) * per_step for h in log if "loss" in h)))


def _model_id(base_model, model_name):
    if model_name is not None:
        return str(model_name)
    if isinstance(base_model, (str, os.PathLike)):
        return os.fspath(base_model)
    return f"{getattr(base_model, '__module__', '?')}.{getattr(base_model, '__qualname__', type(base_model).__name__)}"


def _weight_tag(w):
    return "w" + "-".join(f"{x:.4f}" for x in w) + "-" + hashlib.sha1(np.ascontiguousarray(w).tobytes()).hexdigest()[:8]


def _read_solution(call_dir):
    path = os.path.join(call_dir, SOLUTION)
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


class PartialCall:
    """The work directory ``<call dir>.partial`` of one call, held under an exclusive lock.

    It holds TRL's checkpoints (``checkpoint-<step>/``), ``call.json`` (the call's weight,
    fingerprint, warm-start adapter and the checkpoint to resume from) and ``lock`` (the PID of
    the holder, locked with ``fcntl.flock``).  Its name depends only on the call, so a killed
    call's checkpoints are found by the next call at the same weight with the same fingerprint.

    Used as a context manager: entering takes the lock, waiting while another live process
    holds it (a dead process's lock is free: the kernel drops ``flock`` locks with the process;
    its PID left in the file is simply overwritten).  Leaving removes the directory if the block
    succeeded or the directory holds nothing worth keeping (no checkpoint, no launch log), then
    releases the lock.

    Parameters
    ----------
    path : str
        The work directory (``<call dir>.partial``).
    wait : bool
        Wait for a live holder (default); ``False`` raises :class:`CallInProgressError` instead.
    """

    def __init__(self, path, *, wait=True):
        self.path = path
        self.wait = wait
        self._fd = None

    @property
    def lock_path(self):
        return os.path.join(self.path, "lock")

    def __enter__(self):
        while True:
            os.makedirs(self.path, exist_ok=True)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if self.wait else fcntl.LOCK_NB))
            except BlockingIOError:
                holder = os.read(fd, 64).decode(errors="replace").strip() or "?"
                os.close(fd)
                raise CallInProgressError(
                    f"the call whose work directory is {self.path!r} is running in process {holder}."
                ) from None
            try:  # the holder we waited for may have removed the directory: lock the new file instead
                same = os.fstat(fd).st_ino == os.stat(self.lock_path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            keep = self.checkpoints() or os.path.exists(os.path.join(self.path, LAUNCH_LOG))
            if exc_type is None or not keep:
                shutil.rmtree(self.path, ignore_errors=True)
        finally:
            os.close(self._fd)
            self._fd = None
        return False

    def checkpoints(self):
        """``[(step, path)]`` of the checkpoint directories, newest first."""
        out = []
        for path in glob.glob(os.path.join(self.path, "checkpoint-*")):
            try:
                out.append((int(os.path.basename(path).split("-", 1)[1]), path))
            except ValueError:
                continue
        return sorted(out, reverse=True)

    def latest_readable(self):
        """``(step, path)`` of the newest checkpoint that reads back, or ``None``.

        A checkpoint that does not (a kill while it was written, a damaged file) is removed with
        a warning, and the one before it is tried.
        """
        for step, path in self.checkpoints():
            problem = _unreadable(path)
            if problem is None:
                return step, path
            warnings.warn(
                f"checkpoint {path!r} is unreadable ({problem}); removed, "
                "resuming from the one before it (or from the start).",
                RuntimeWarning,
                stacklevel=2,
            )
            shutil.rmtree(path, ignore_errors=True)
        return None

    def prepare(self, fingerprint, w, completed):
        """Record in ``call.json`` where the call starts: the warm-start adapter and the checkpoint to resume.

        A readable checkpoint of an earlier, killed attempt (same fingerprint) is resumed, with that
        attempt's warm-start adapter (the initial point it already trained from); otherwise the call
        starts from the adapter of the nearest (L1) of the ``completed`` calls ``[(w, call_dir)]``
        (empty: no warm start), and any other checkpoint is removed.
        """
        record = self.read()
        latest = self.latest_readable()
        if latest is not None and record is not None and record.get("fingerprint") == fingerprint:
            self.write(dict(record, resume_from=latest[1]))
            return
        for _, path in self.checkpoints():
            shutil.rmtree(path, ignore_errors=True)
        done = [(np.abs(v - w).sum(), path) for v, path in completed]
        warm_from = os.path.join(min(done)[1], "adapter") if done else None
        record = {"fingerprint": fingerprint, "weight": w.tolist(), "warm_start_from": warm_from}
        self.write(dict(record, resume_from=None))

    def read(self):
        """The recorded ``call.json`` (a dict), or ``None`` when absent or unreadable."""
        try:
            with open(os.path.join(self.path, "call.json")) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def write(self, record):
        """Write ``call.json`` atomically."""
        path = os.path.join(self.path, "call.json")
        with open(path + ".tmp", "w") as f:
            json.dump(record, f, indent=1)
        os.replace(path + ".tmp", path)


class CallInProgressError(RuntimeError):
    """Another live process holds the work directory of this call."""


def _unreadable(checkpoint):
    """Why the checkpoint directory cannot be resumed from (a short string), or ``None`` if it can.

    Reads everything ``Trainer`` reads on resume: ``trainer_state.json``, the adapter weights
    (``*.safetensors``) and the optimiser, scheduler and random states (``*.pt``, ``*.pth``,
    loaded as ``Trainer`` loads them: ``weights_only=True`` with transformers' allow-list).
    """
    import safetensors.torch
    import torch
    from transformers.trainer_pt_utils import safe_globals

    try:
        with open(os.path.join(checkpoint, "trainer_state.json")) as f:
            step = json.load(f)["global_step"]
        if not isinstance(step, int):
            return "trainer_state.json has no integer global_step"
        for name in ("optimizer.pt", "scheduler.pt"):
            if not os.path.isfile(os.path.join(checkpoint, name)):
                return f"no {name}"
        weights = glob.glob(os.path.join(checkpoint, "*.safetensors"))
        if not weights:
            return "no adapter weights"
        for path in weights:
            safetensors.torch.load_file(path, device="cpu")
        with safe_globals():
            for path in glob.glob(os.path.join(checkpoint, "*.pt")) + glob.glob(os.path.join(checkpoint, "*.pth")):
                torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # any failure to read means: do not resume from it
        return f"{type(err).__name__}: {err}"
    return None
