r"""The helpers of :class:`~oracles.llm.GRPOOracle` around one call: the run directory (call tags,
solution records, orphaned temporary directories), the declared error, the KL anchor of a warm
start, and the token count of a training log."""

import hashlib
import json
import os
import shutil

import numpy as np

from palmopt.oracle import Solution

SOLUTION = "solution.json"


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


def _remove_orphans(final):
    """Delete the temporary directories of calls to ``final`` whose process is gone (killed mid-call)."""
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
    """Completion tokens sampled during training, from TRL's logged mean completion length."""
    try:
        with open(log_path) as f:
            log = json.load(f)
    except (OSError, ValueError):
        return 0
    per_step = cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps
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
