r"""A real LLM experiment on two CPU cores: a portfolio of GRPO-trained LoRA adapters.

The task
--------
A prompt lists three required letters, ``need : c a f ->``; a completion is a few letters.
Two rewards that genuinely conflict (both in [0, 1], see :mod:`oracles.llm.rewards`):

* brevity  ``1 - (min(L, 3) / 3) ** 2`` (``L`` words): say as little as possible;
* coverage ``(required letters present) / 3``: say every required letter.

A policy that writes exactly ``c`` required letters earns ``(1 - c²/9, c/3)``:
``(1, 0), (0.89, 0.33), (0.56, 0.67), (0, 1)`` -- a concave front, so different users (weights)
are best served by different policies.  Writing a letter that is not required only costs
brevity, and mixing policies only averages these vectors, so the exact front is known in closed
form: ``OPT(w) = max over c in {0, 1, 2, 3} of w·(1 - c²/9, c/3)`` (:data:`FRONT`).  The script
prints the portfolio's *true* worst gaps against it (:func:`palmopt.certify`, exact LPs) beside
the black-box certificate, which only knows the oracle's answers.

The model
---------
A 2-layer Llama (hidden size 64, 14-word vocabulary, built from a ``LlamaConfig``; nothing is
downloaded) is first pre-trained by plain supervised learning on completions of random length
0-3 that mostly copy required letters: a base policy that knows the format but has no
preference.  Each oracle call then trains a LoRA adapter with TRL's ``GRPOTrainer`` on
``w·r`` and evaluates it on 16 held-out prompts (8 samples each).

The portfolio comes from :func:`palmopt.adaptive` (the certified corner-weight search).  The
script prints the calls, the portfolio, each member's reward vector with standard errors,
what the members say on shared prompts, their diversity (distinct-n), the members that
:func:`oracles.llm.generate` routes a few users to, and a zero-training baseline: the
decoding-time mix (:class:`oracles.llm.LogitMixOracle`) of the two specialists.

On a CPU everything runs on one thread (tiny models run several times faster so): the
oracles' ``num_threads`` option, and a scoped thread count for the pre-training; torch's own
setting is left as it was.

Run ``python examples/llm_toy.py`` (about a minute on 2 cores; ``--quick`` for a smaller run of
about half a minute) with the ``llm`` extra installed.
"""

import argparse
import itertools
import json
import os
import random
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
if os.path.dirname(HERE) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, os.path.dirname(HERE))

LETTERS = list("abcdefgh")
WORDS = ["<pad>", "<eos>", "<unk>", "need", ":", "->", *LETTERS]
K = 3  # required letters per prompt
MAX_WORDS = 3  # brevity reaches 0 here
#: The exact front: a policy that writes exactly c required letters (and nothing else) earns
#: (1 - c²/9, c/3); every achievable value vector is dominated by a mix of these four.
FRONT = np.array([(1.0 - (c / MAX_WORDS) ** 2, c / K) for c in range(K + 1)])


def true_gaps(values, eps, delta):
    """Worst gaps of value vectors (a portfolio's members) against the closed-form :data:`FRONT`, over the whole
    simplex: ``palmopt.certify`` (exact LPs).  ``delta_star``: the largest ``OPT(w) - max_j w·u_j``."""
    import palmopt

    cert = palmopt.certify(np.asarray(values, dtype=float), FRONT, eps, delta)
    return {
        "holds": bool(cert.holds),
        "violation": round(float(cert.violation), 4),
        "eps_star": round(float(cert.eps_star), 4),
        "delta_star": round(float(cert.delta_star), 4),
    }


def make_tokenizer():
    """A word-level tokenizer over the task's 14 words, built in memory."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")


def make_model(seed=0, hidden=64, layers=2):
    """A randomly initialised tiny causal LM (seeded; the caller's random state is left as it was)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(WORDS),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=32,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=None,
        tie_word_embeddings=False,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return LlamaForCausalLM(config)


def prompt(required):
    return "need : " + " ".join(required) + " ->"


def build_data(seed=0, n_train=40):
    """Train and held-out prompts: disjoint sets of required letters (56 sets of 3 in all)."""
    rng = random.Random(seed)
    sets = list(itertools.combinations(LETTERS, K))
    rng.shuffle(sets)
    rows = []
    for s in sets:
        s = list(s)
        rng.shuffle(s)
        rows.append({"prompt": prompt(s), "required": s})
    return rows[:n_train], rows[n_train:]


def _sft_completion(required, rng, p_required=0.9):
    out, left = [], list(required)
    rng.shuffle(left)
    for _ in range(rng.randint(0, MAX_WORDS)):
        if left and rng.random() < p_required:
            out.append(left.pop())
        else:
            out.append(rng.choice([c for c in LETTERS if c not in required]))
    return out


def pretrain_base(path, *, steps=400, seed=0, batch=64, lr=3e-3, num_threads=None):
    """Supervised pre-training of the base policy; saved (model and tokenizer) to ``path``.

    Skipped when ``path`` already holds a base trained with the same settings.  ``num_threads``:
    torch's CPU threads during the training (``None``: torch's setting).
    """
    import torch

    from oracles.llm.hf import torch_threads

    stamp = {"steps": steps, "seed": seed, "batch": batch, "lr": lr, "words": WORDS}
    marker = os.path.join(path, "pretrain.json")
    if os.path.isfile(marker):
        with open(marker) as f:
            if json.load(f) == stamp:
                return path
    tok = make_tokenizer()
    model = make_model(seed)
    train, _ = build_data(seed)
    rng = random.Random(seed + 1)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    with torch_threads(num_threads):
        for _ in range(steps):
            pairs = []
            for _ in range(batch):
                req = list(rng.choice(train)["required"])
                rng.shuffle(req)
                p = tok(prompt(req))["input_ids"]
                c = tok(" ".join(_sft_completion(req, rng)))["input_ids"] + [tok.eos_token_id]
                pairs.append((p, c))
            width = max(len(p) + len(c) for p, c in pairs)
            ids = torch.zeros(batch, width, dtype=torch.long)
            att = torch.zeros(batch, width, dtype=torch.long)
            lab = torch.full((batch, width), -100)
            for i, (p, c) in enumerate(pairs):
                seq = p + c
                ids[i, : len(seq)] = torch.tensor(seq)
                att[i, : len(seq)] = 1
                lab[i, len(p) : len(seq)] = torch.tensor(c)  # loss on the completion only
            loss = model(input_ids=ids, attention_mask=att, labels=lab).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
    os.makedirs(path, exist_ok=True)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    with open(marker, "w") as f:
        json.dump(stamp, f)
    return path


def rewards():
    from oracles.llm.rewards import Brevity, Coverage

    return [Brevity(MAX_WORDS, unit="words", power=2), Coverage(key="required")]


def make_oracle(base_dir, run_dir, *, steps=50, eval_samples=8, seed=0, num_threads=None):
    """The GRPO oracle of this task (the base model is loaded from ``base_dir``).

    ``num_threads`` (torch's CPU threads during the oracle's work) is not part of its fingerprint.
    """
    from oracles.llm import GRPOOracle

    train, held_out = build_data(seed)
    return GRPOOracle(
        base_dir,
        rewards(),
        train,
        held_out,
        run_dir,
        config={
            "max_steps": steps,
            "learning_rate": 5e-3,
            "per_device_train_batch_size": 16,
            "num_generations": 8,
            "max_completion_length": MAX_WORDS + 1,
            "eval_samples": eval_samples,
            "seed": seed,
            "num_threads": num_threads,
        },
        model_name="llm_toy-base",
    )


def run(out_dir, *, quick=False, eps=0.05, delta=0.02, max_calls=None, seed=0, progress=False, num_threads=None):
    """Build the base, the portfolio, the diagnostics; return a JSON-friendly summary.

    ``num_threads``: torch's CPU threads for the pre-training and the oracles (default: 1 without
    CUDA -- tiny models run several times faster on one thread, the OpenMP start-up of each
    operation dominates -- else torch's setting).  Torch's own setting is left as it was.
    """
    import torch
    from transformers.utils import logging as hf_logging

    if num_threads is None and not torch.cuda.is_available():
        num_threads = 1
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return _run(out_dir, quick, eps, delta, max_calls, seed, progress, num_threads)
    finally:
        if bars:
            hf_logging.enable_progress_bar()


def _run(out_dir, quick, eps, delta, max_calls, seed, progress, num_threads):
    import palmopt
    from oracles.llm import LogitMixOracle, distinct_n, generate, load_adapter, member_distinct_n

    max_calls = max_calls or (4 if quick else 8)
    t0 = time.perf_counter()
    base = pretrain_base(
        os.path.join(out_dir, "base"), steps=150 if quick else 400, seed=seed, num_threads=num_threads
    )
    t_base = time.perf_counter() - t0
    oracle = make_oracle(
        base,
        os.path.join(out_dir, "runs"),
        steps=25 if quick else 50,
        eval_samples=4 if quick else 8,
        seed=seed,
        num_threads=num_threads,
    )

    t1 = time.perf_counter()
    portfolio = palmopt.adaptive(
        oracle, eps, delta, max_calls=max_calls, store=os.path.join(out_dir, "runs"), progress=progress
    )
    t_portfolio = time.perf_counter() - t1
    queries = oracle.history()
    # The true worst gaps, against the closed-form front: with the members' values as the oracle
    # reported them, and with a fresh, independent evaluation (4x the samples) of each member, which
    # removes the selection bias of keeping the members whose estimates came out high.
    fresh = [oracle.evaluate(a, repeats=4, seed=seed + 2) for a in portfolio.policies]
    truth = {
        "reported": true_gaps(portfolio.values, eps, delta),
        "reevaluated": true_gaps([f.values for f in fresh], eps, delta),
        "reevaluated_values": [np.round(f.values, 4).tolist() for f in fresh],
        "reevaluated_stderr": [np.round(f.stderr, 4).tolist() for f in fresh],
    }

    # What the members say on shared held-out prompts, and how different they are.
    _, held_out = build_data(seed)
    shared = held_out[:8]
    tok = oracle.tokenizer
    models = {os.path.abspath(a): oracle.load_model(a) for a in portfolio.policies}
    per_member = []
    for adapter in portfolio.policies:
        texts = oracle.sample(adapter, shared, n=2, seed=seed, model=models[os.path.abspath(adapter)])
        per_member.append([texts[2 * i : 2 * i + 2] for i in range(len(shared))])
    pooled = [c for m in per_member for cs in m for c in cs]
    diversity = {
        "distinct_1_pooled": distinct_n(pooled, 1),
        "distinct_2_pooled": distinct_n(pooled, 2),
        "cross_member_distinct_1": member_distinct_n(per_member, 1),
        "per_member_distinct_1": [distinct_n([c for cs in m for c in cs], 1) for m in per_member],
    }

    # Serving: route users to members.
    users = np.array([[0.9, 0.1], [0.6, 0.4], [0.4, 0.6], [0.1, 0.9]])
    served = [generate(portfolio, u, shared[:2], oracle=oracle, seed=seed, cache=models) for u in users]

    # Zero-training baseline: decoding-time mix of the two specialists (the e_1, e_2 calls).
    specialists = {tuple(np.round(w, 6)): s.policy for w, s in queries if np.isclose(w.max(), 1.0)}
    mix = None
    if len(specialists) == 2:
        adapters = [specialists[(1.0, 0.0)], specialists[(0.0, 1.0)]]
        mixer = LogitMixOracle(
            [load_adapter(base, a) for a in adapters],
            tok,
            rewards(),
            held_out,
            config={"max_new_tokens": MAX_WORDS + 1, "eval_samples": 4 if quick else 8, "num_threads": num_threads},
            names=[os.path.basename(os.path.dirname(a)) for a in adapters],
        )
        mix = {str(w): mixer(np.array(w)).values.round(4).tolist() for w in [(0.7, 0.3), (0.5, 0.5), (0.3, 0.7)]}

    summary = {
        "seconds_base_pretraining": round(t_base, 1),
        "seconds_portfolio": round(t_portfolio, 1),
        "oracle_calls": portfolio.n_oracle_calls,
        "portfolio_size": len(portfolio),
        "status": getattr(portfolio, "status", None),
        "certificate": {
            "holds": bool(portfolio.certificate.holds),
            "eps_star": round(portfolio.certificate.eps_star, 4),
            "delta_star": round(portfolio.certificate.delta_star, 4),
            "relative_to": "the oracle's answers" if oracle.error is None else f"declared error {oracle.error}",
        },
        "true_gap": truth,
        "calls": [
            {
                "w": np.round(w, 4).tolist(),
                "values": np.round(s.values, 4).tolist(),
                "stderr": np.round(s.stderr, 4).tolist(),
                "seconds": round(s.info.get("seconds_train", 0) + s.info.get("seconds_eval", 0), 1),
            }
            for w, s in queries
        ],
        "members": [
            {
                "w": np.round(w, 4).tolist(),
                "values": np.round(v, 4).tolist(),
                "says": [cs[0] for cs in per_member[j][:4]],
            }
            for j, (w, v) in enumerate(zip(portfolio.weights, portfolio.values))
        ],
        "diversity": {
            k: (np.round(v, 4).tolist() if isinstance(v, list) else round(v, 4)) for k, v in diversity.items()
        },
        "routing": {str(u.tolist()): {"member": g.member, "says": list(g.completions)} for u, g in zip(users, served)},
        "logit_mix_baseline": mix,
        "shared_prompts": [r["prompt"] for r in shared[:4]],
    }
    portfolio.save(os.path.join(out_dir, "portfolio"), oracle=oracle)
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    return summary


def report(summary):
    s = summary
    lines = [
        f"oracle calls: {s['oracle_calls']}   portfolio size: {s['portfolio_size']}   status: {s['status']}   "
        f"certificate holds: {s['certificate']['holds']} (eps*={s['certificate']['eps_star']}, "
        f"delta*={s['certificate']['delta_star']}; black-box, relative to {s['certificate']['relative_to']})",
        f"TRUE worst gaps against the closed-form front: eps*={s['true_gap']['reported']['eps_star']}, "
        f"delta*={s['true_gap']['reported']['delta_star']}, holds: {s['true_gap']['reported']['holds']} "
        f"(members re-evaluated with 4x samples: eps*={s['true_gap']['reevaluated']['eps_star']}, "
        f"delta*={s['true_gap']['reevaluated']['delta_star']}, holds: {s['true_gap']['reevaluated']['holds']})",
        f"time: base pre-training {s['seconds_base_pretraining']} s, portfolio {s['seconds_portfolio']} s",
        "calls (w -> [brevity, coverage] ± stderr):",
    ]
    for c in s["calls"]:
        lines.append(f"  w={c['w']}  V={c['values']}  ±{c['stderr']}  ({c['seconds']} s)")
    lines.append(f"members (on prompts {s['shared_prompts']}):")
    for m in s["members"]:
        lines.append(f"  w={m['w']}  V={m['values']}  says {m['says']}")
    lines.append(f"diversity: {s['diversity']}")
    lines.append("routing (user w -> member, what it says on the first two prompts):")
    for u, r in s["routing"].items():
        lines.append(f"  {u} -> member {r['member']}: {r['says']}")
    lines.append(f"logit-mix baseline (no training; w -> V): {s['logit_mix_baseline']}")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="llm_toy_out", help="output directory (reused: completed calls are not repeated)")
    ap.add_argument("--quick", action="store_true", help="a smaller run (about half a minute)")
    ap.add_argument("--eps", type=float, default=0.05)
    ap.add_argument("--delta", type=float, default=0.02)
    ap.add_argument("--max-calls", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    summary = run(
        args.out,
        quick=args.quick,
        eps=args.eps,
        delta=args.delta,
        max_calls=args.max_calls,
        seed=args.seed,
        progress=True,
    )
    print(report(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
