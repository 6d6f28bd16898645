r"""Rewarded soups (Ramé et al. 2023) from a GRPO oracle's specialists: a zero-training baseline.

:func:`soup_portfolio` trains (or finds in the run directory) the ``d`` specialists ``oracle(e_i)``,
combines their LoRA adapters at ``k`` evenly spread weights with peft's
``add_weighted_adapter(combination_type="cat")`` -- the weight-space interpolation
``Σ_i w_i ΔW_i`` of the specialists' updates -- and evaluates each soup with
``oracle.evaluate``.  Soups are written (and their evaluations kept) under ``out/soups``, so a
rerun repeats nothing.
"""

import json
import os
import shutil

import numpy as np

__all__ = ["soup_portfolio", "specialists_baseline"]


def soup_portfolio(oracle, k, out):
    """Rewarded soups: specialists' adapters combined at ``k`` evenly spread weights, each evaluated."""
    import palmopt

    from .hf import build_base, quiet

    from palmopt.oracle import checked

    # the d specialists (the oracle's run directory makes these calls resumable; equal values are kept apart)
    adapters = [str(checked(oracle)(w).policy) for w in np.eye(oracle.d)]
    W = palmopt.nets.uniform(oracle.d, k)
    soup_root = os.path.join(out, "soups")
    os.makedirs(soup_root, exist_ok=True)
    records, policies = [], []
    for w in W:
        tag = "soup-" + "-".join(f"{x:.4f}" for x in w)
        final = os.path.join(soup_root, tag)
        done = os.path.join(final, "evaluation.json")
        if not os.path.isfile(done):
            from peft import PeftModel

            with quiet():
                model = PeftModel.from_pretrained(build_base(oracle.base_model, oracle.config.model_dtype), adapters[0], adapter_name="s0")
                for i, a in enumerate(adapters[1:], 1):
                    model.load_adapter(a, adapter_name=f"s{i}")
                names = [f"s{i}" for i in range(len(adapters))]
                model.add_weighted_adapter(names, [float(x) for x in w], adapter_name="soup", combination_type="cat")
                tmp = final + ".tmp"
                model.save_pretrained(tmp, selected_adapters=["soup"])
            adapter = os.path.join(tmp, "soup")
            sol = oracle.evaluate(adapter, seed=oracle.config.seed + 1)
            with open(os.path.join(tmp, "evaluation.json"), "w") as f:
                json.dump({"values": sol.values.tolist(), "stderr": sol.stderr.tolist(), "cost": sol.info["cost"]}, f)
            if os.path.exists(final):
                shutil.rmtree(final)
            os.replace(tmp, final)
        with open(done) as f:
            records.append(json.load(f))
        policies.append(os.path.join(final, "soup"))
    return specialists_baseline(oracle, "soups", W, adapters, records, policies)


def specialists_baseline(oracle, method, W, adapters, records, policies):
    """The result of a baseline built from the ``d`` specialists (``soups``, ``mix``): the portfolio of
    the evaluated ``records`` (``values``, ``stderr``, ``cost``) at the weights ``W``, the
    specialists, and the evaluations' summed seconds and tokens."""
    import palmopt

    p = palmopt.Portfolio(
        values=[r["values"] for r in records],
        weights=W,
        policies=policies,
        n_oracle_calls=oracle.d,
        method=method,
        info={"specialists": adapters, "stderr": [r["stderr"] for r in records]},
    )
    seconds = sum(float(r["cost"]["seconds"]) for r in records)
    tokens = sum(int(r["cost"]["tokens_generated"]) for r in records)
    return p, adapters, seconds, tokens
