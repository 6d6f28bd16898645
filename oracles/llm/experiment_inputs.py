r"""The inputs of an experiment kit (:mod:`oracles.llm.experiment`): its prompts and its rewards.

:func:`build_rows` reads the train and held-out prompts (a local jsonl/parquet file, a ``datasets``
name, or the shipped smoke set), in the source dataset's own format, with a fixed split checked for
overlap; :func:`build_rewards` makes the ``d`` reward functions of the config's ``[[rewards]]``
tables; :func:`calibrate` maps classifier rewards into [0, 1] from base-policy samples (cached).
"""

import json
import os

__all__ = ["build_rewards", "build_rows", "calibrate"]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# -- data -----------------------------------------------------------------------------------


def _hh_first_turn(text):
    """The first human turn of an Anthropic HH-RLHF transcript (``\\n\\nHuman: ... \\n\\nAssistant:``)."""
    body = text.split("Human:", 1)[-1]
    return body.split("\n\nAssistant:", 1)[0].strip()


def _extract(fmt, record, where):
    """``(prompt text, extra columns)`` of one source record, in the source dataset's own format."""
    try:
        if fmt == "gsm8k":
            return record["question"], {"answer": record["answer"]}
        if fmt == "safe-rlhf":
            return record["prompt"], {}
        if fmt == "hh-rlhf":
            return _hh_first_turn(record["chosen"]), {}
        return record["prompt"], {}
    except KeyError as exc:
        raise ValueError(f"{where}: a {fmt!r} record lacks the field {exc}.") from None


def _read_records(data, smoke, split):
    if smoke:
        path = data["smoke_path"]
        path = path if os.path.isabs(path) else os.path.join(ROOT, path)
        with open(path) as f:
            records = [json.loads(line) for line in f if line.strip()]
        return records, path
    path = data["path"]
    if path.endswith(".jsonl") and os.path.isfile(path):
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()], path
    from datasets import load_dataset

    name = data.get("train_split" if split == "train" else "eval_split", split)
    return list(load_dataset(path, data.get("config"), split=name)), f"{path}[{name}]"


def build_rows(spec, smoke):
    """``(train_rows, eval_rows)``: prompts formatted for the model (chat messages or a template)."""
    data, model = spec["data"], spec["model"]
    limits = {**data, **(spec.get("smoke", {}).get("data", {}) if smoke else {})}
    out = []
    seen_train = set()
    for split in ("train", "eval"):
        if smoke:  # the shipped set: its first n_train records train, the rest are held out
            records, where = _read_records(data, True, split)
            n_train = limits.get("n_train", len(records) // 2)
            records = records[:n_train] if split == "train" else records[n_train:]
        else:
            records, where = _read_records(data, False, split)
        rows = []
        for rec in records:
            text, extra = _extract(data["format"], rec, where)
            text = " ".join([text, data["instruction"]]) if data.get("instruction") else text
            if split == "eval" and text in seen_train:
                continue  # held-out means held out
            if split == "train":
                seen_train.add(text)
            if model.get("chat", False):
                msgs = [{"role": "system", "content": model["system_prompt"]}] if model.get("system_prompt") else []
                prompt = msgs + [{"role": "user", "content": text}]
            else:
                prompt = model.get("template", "{prompt}").format(prompt=text)
            rows.append({"prompt": prompt, **extra})
        key = "n_train" if split == "train" else "n_eval"
        if key in limits:
            rows = rows[: limits[key]]
        if not rows:
            raise ValueError(f"{where}: no {split} prompts.")
        out.append(rows)
    return out[0], out[1]


# -- rewards --------------------------------------------------------------------------------


def build_rewards(spec, smoke, words=None):
    """The ``d`` reward functions, classifier ones not yet calibrated (loaded lazily, never here)."""
    from .rewards import AnswerCorrectness, Brevity, FormatCompliance, LazyClassifierReward

    out = []
    for i, r in enumerate(spec["rewards"]):
        kind = r["kind"]
        if kind == "correctness":
            out.append(AnswerCorrectness(key=r.get("key", "answer"), fallback=r.get("fallback", False)))
        elif kind == "brevity":
            out.append(Brevity(r["max_length"], unit=r.get("unit", "tokens"), power=r.get("power", 1.0)))
        elif kind == "format":
            out.append(FormatCompliance(r["pattern"]))
        else:
            common = dict(
                name=r["name"], label=r.get("label", 0), negate=r.get("negate", False), max_length=r.get("max_input_tokens")
            )
            if smoke:
                out.append(
                    LazyClassifierReward(
                        "oracles.llm.smoke:tiny_classifier",
                        factory_kwargs={
                            "family": r.get("family", "llama"),
                            "words": words,
                            "seed": 100 + i,
                            "num_labels": r.get("label", 0) + 1,
                        },
                        **common,
                    )
                )
            else:
                out.append(LazyClassifierReward(r["model"], dtype=r.get("dtype"), **common))
    return out


def calibrate(rewards, spec, base_model, tokenizer, rows, grpo_config, cache_path):
    """Classifier rewards with bounds from the base policy's samples (cached in ``cache_path``).

    For each classifier reward: ``calibration_samples`` completions of the base policy on the
    first training prompts (the training's sampling settings), scored; the bounds are the
    ``quantiles`` (default ``[0.05, 0.95]``) of the scores widened by ``margin`` (default 0.5)
    times their spread on each side, so the base policy scores inside ``[0, 1]`` and a trained
    policy has room to move; values beyond are clipped and counted.
    """
    from .hf import build_base, isolated_rng, quiet, sample

    todo = [(i, r) for i, r in enumerate(rewards) if hasattr(r, "calibrated")]
    if not todo:
        return rewards
    cached = {}
    if os.path.isfile(cache_path):
        with open(cache_path) as f:
            cached = json.load(f)
    key = repr([repr(r) for _, r in todo]) + repr(grpo_config.identity()) + repr(len(rows))
    if cached.get("key") != key:
        n = max(spec["rewards"][i].get("calibration_samples", 64) for i, _ in todo)
        per_prompt = 2
        rows_ = rows[: max(1, n // per_prompt)]
        with quiet(), isolated_rng(grpo_config.seed):
            model = build_base(base_model, grpo_config.model_dtype)
            import torch

            model = model.to("cuda" if torch.cuda.is_available() and not grpo_config.use_cpu else "cpu")
            completions, _ = sample(
                model,
                tokenizer,
                rows_,
                per_prompt,
                max_new_tokens=grpo_config.max_completion_length,
                temperature=grpo_config.sampling()["temperature"],
                seed=grpo_config.seed + 2,
                batch_size=grpo_config.eval_batch_size,
                generation_kwargs=grpo_config.sampling(),
            )
            del model
        prompts = [r["prompt"] for r in rows_ for _ in range(per_prompt)]
        bounds = {}
        for i, r in todo:
            cfg = spec["rewards"][i]
            c = r.calibrated(
                prompts, completions, quantiles=tuple(cfg.get("quantiles", (0.05, 0.95))), margin=cfg.get("margin", 0.5)
            )
            bounds[r.name] = list(c.bounds)
        cached = {"key": key, "bounds": bounds, "n_samples": len(completions)}
        tmp = cache_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(cached, f, indent=1)
        os.replace(tmp, cache_path)
    out = list(rewards)
    for i, r in todo:
        out[i] = r.with_bounds(*cached["bounds"][r.name])
    return out
