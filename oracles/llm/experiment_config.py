r"""The experiment configs' schema and strict checks: :func:`load_config` (see :mod:`oracles.llm.experiment`).

Every check happens before anything is built or trained; each failure is one ``ValueError``
that starts with the file's path and names the key.
"""

import copy
import difflib
import os
import tomllib

__all__ = ["FAMILIES", "FORMATS", "METHODS", "REWARD_KINDS", "load_config"]

METHODS = ("adaptive", "palm", "uniform", "random", "soups", "mix")
FAMILIES = ("llama", "qwen2", "qwen3", "mistral")
FORMATS = ("gsm8k", "safe-rlhf", "hh-rlhf", "prompt")
REWARD_KINDS = ("correctness", "brevity", "format", "classifier")

# -- the schema: section -> {key: (type, required)} ---------------------------------------

_SCHEMA = {
    "experiment": {
        "name": (str, True),
        "eps": (float, True),
        "delta": (float, True),
        "methods": (list, True),
        "description": (str, False),
        "seed": (int, False),
        "max_calls": (int, False),
        "batch": (int, False),
        "k": (int, False),
        "error": (list, False),
    },
    "model": {
        "name": (str, True),
        "family": (str, True),
        "dtype": (str, False),
        "chat": (bool, False),
        "system_prompt": (str, False),
        "template": (str, False),
    },
    "data": {
        "format": (str, True),
        "path": (str, True),
        "smoke_path": (str, True),
        "config": (str, False),
        "train_split": (str, False),
        "eval_split": (str, False),
        "n_train": (int, False),
        "n_eval": (int, False),
        "instruction": (str, False),
    },
    "reward": {
        "name": (str, True),
        "kind": (str, True),
        "key": (str, False),
        "fallback": (bool, False),
        "max_length": (int, False),
        "unit": (str, False),
        "power": (float, False),
        "pattern": (str, False),
        "model": (str, False),
        "family": (str, False),
        "negate": (bool, False),
        "dtype": (str, False),
        "label": (int, False),
        "calibration_samples": (int, False),
        "quantiles": (list, False),
        "margin": (float, False),
        "max_input_tokens": (int, False),
    },
    "grpo": None,  # GRPOOracleConfig's own strict check
    "smoke": {"experiment": (dict, False), "grpo": (dict, False), "data": (dict, False)},
}
_TOP = {"experiment": True, "model": True, "data": True, "rewards": True, "grpo": True, "smoke": False}
_SMOKE_EXPERIMENT = ("eps", "delta", "max_calls", "k", "methods")
_SMOKE_DATA = ("n_train", "n_eval")


def _fail(path, message):
    raise ValueError(f"{path}: {message}")


def _hint(key, names):
    close = difflib.get_close_matches(str(key), list(names), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_table(path, where, table, schema):
    if not isinstance(table, dict):
        _fail(path, f"[{where}] must be a table; got {type(table).__name__}.")
    for key in table:
        if key not in schema:
            _fail(path, f"unknown key {where}.{key}{_hint(key, schema)}; valid keys: {', '.join(schema)}.")
    for key, (typ, required) in schema.items():
        if key not in table:
            if required:
                _fail(path, f"missing required key {where}.{key}.")
            continue
        value = table[key]
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) if typ is float else isinstance(value, typ)
        if typ is int and isinstance(value, bool):
            ok = False
        if not ok:
            _fail(path, f"{where}.{key} must be {typ.__name__}; got {value!r}.")


def load_config(config):
    """Read and check a TOML config (a path, or an already parsed mapping); return ``(spec, path)``.

    Every check happens here, before anything is trained: unknown keys (with a suggestion),
    missing fields, wrong types, unknown methods, families, data formats and reward kinds, and
    the GRPO settings (through :class:`~oracles.llm.GRPOOracleConfig`).  Each failure is one
    ``ValueError`` that names the key and the file.
    """
    if isinstance(config, dict):
        path, spec = "<config>", copy.deepcopy(config)
    else:
        path = os.fspath(config)
        if not os.path.isfile(path):
            raise ValueError(f"{path}: no such config file.")
        try:
            with open(path, "rb") as f:
                spec = tomllib.load(f)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: not valid TOML: {exc}") from None
    for key in spec:
        if key not in _TOP:
            _fail(path, f"unknown section [{key}]{_hint(key, _TOP)}; valid sections: {', '.join(_TOP)}.")
    for key, required in _TOP.items():
        if required and key not in spec:
            _fail(path, f"missing required section [{key}]" + (" ([[rewards]] tables)" if key == "rewards" else "."))
    for section in ("experiment", "model", "data"):
        _check_table(path, section, spec[section], _SCHEMA[section])
    exp, model, data = spec["experiment"], spec["model"], spec["data"]
    rewards = spec["rewards"]
    if not isinstance(rewards, list) or not rewards:
        _fail(path, "[[rewards]] must list at least one reward table.")
    for i, r in enumerate(rewards):
        _check_table(path, f"rewards[{i}]", r, _SCHEMA["reward"])
        if r["kind"] not in REWARD_KINDS:
            _fail(path, f"rewards[{i}].kind must be one of {REWARD_KINDS}; got {r['kind']!r}.")
        needs = {"brevity": "max_length", "format": "pattern", "classifier": "model"}.get(r["kind"])
        if needs and needs not in r:
            _fail(path, f"missing required key rewards[{i}].{needs} (a {r['kind']!r} reward).")
        if r["kind"] == "classifier" and ":" in r["model"] and not os.path.exists(r["model"]):
            _fail(
                path,
                f"rewards[{i}].model must be a model name or a local path; got {r['model']!r}, which looks like a "
                f"'module:function' factory -- a config file may not choose code to import (build such a reward "
                f"in Python with oracles.llm.rewards.LazyClassifierReward).",
            )
        if r["kind"] == "classifier" and r.get("family", "llama") not in FAMILIES:
            _fail(path, f"rewards[{i}].family must be one of {FAMILIES}; got {r['family']!r}.")
    names = [r["name"] for r in rewards]
    if len(set(names)) != len(names):
        _fail(path, f"reward names must be distinct; got {names}.")
    for m in exp["methods"]:
        if m not in METHODS:
            _fail(path, f"experiment.methods: unknown method {m!r}{_hint(m, METHODS)}; valid: {', '.join(METHODS)}.")
    if not exp["methods"]:
        _fail(path, "experiment.methods must name at least one method.")
    baselines = {"uniform", "random", "soups", "mix"}
    if "k" not in exp and "adaptive" not in exp["methods"] and set(exp["methods"]) & baselines:
        _fail(path, "experiment.k is required when the baselines run without 'adaptive' (whose size k defaults to).")
    if "error" in exp and (len(exp["error"]) != 2 or not all(isinstance(e, (int, float)) for e in exp["error"])):
        _fail(path, f"experiment.error must be [eta_mult, eta_add]; got {exp['error']!r}.")
    if "batch" in exp and exp["batch"] < 1:
        _fail(path, f"experiment.batch must be >= 1 (weights per adaptive round); got {exp['batch']!r}.")
    if model["family"] not in FAMILIES:
        _fail(path, f"model.family must be one of {FAMILIES}; got {model['family']!r}.")
    if data["format"] not in FORMATS:
        _fail(path, f"data.format must be one of {FORMATS}; got {data['format']!r}.")
    if "template" in model and "{prompt}" not in model["template"]:
        _fail(path, "model.template must contain '{prompt}'.")
    smoke = spec.get("smoke", {})
    _check_table(path, "smoke", smoke, _SCHEMA["smoke"])
    for key in smoke.get("experiment", {}):
        if key not in _SMOKE_EXPERIMENT:
            _fail(path, f"unknown key smoke.experiment.{key}; valid keys: {', '.join(_SMOKE_EXPERIMENT)}.")
    for key in smoke.get("data", {}):
        if key not in _SMOKE_DATA:
            _fail(path, f"unknown key smoke.data.{key}; valid keys: {', '.join(_SMOKE_DATA)}.")
    _check_table(
        path, "smoke.experiment", smoke.get("experiment", {}), {k: (_SCHEMA["experiment"][k][0], False) for k in _SMOKE_EXPERIMENT}
    )
    from .config import GRPOOracleConfig

    for where, table in (("grpo", spec["grpo"]), ("smoke.grpo", {**spec["grpo"], **smoke.get("grpo", {})})):
        try:
            GRPOOracleConfig.from_dict(table)
        except (TypeError, ValueError) as exc:
            _fail(path, f"[{where}]: {exc}")
    for key in ("eps", "delta"):
        for where, value in (("experiment", exp[key]), ("smoke.experiment", smoke.get("experiment", {}).get(key, 0.0))):
            if not 0 <= value < 1:
                _fail(path, f"{where}.{key} must be in [0, 1); got {value!r}.")
    return spec, path
