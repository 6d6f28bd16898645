#!/usr/bin/env bash
# One GRPOOracle call (oracles.llm) on one GPU: prints the time per call and the peak GPU memory.
#
#   bash bench/gpu_smoke.sh
#       A model with Qwen2.5-0.5B-Instruct's shape (24 layers, hidden 896, vocabulary 151,936)
#       and random weights, built from a config with an in-memory tokenizer: nothing is
#       downloaded.  Random weights never stop early, so every completion runs to the length
#       limit: the timing is the worst case for that limit.
#   PALMOPT_MODEL=/models/Qwen2.5-0.5B-Instruct bash bench/gpu_smoke.sh
#       A real model from a local directory (weights and tokenizer; a chat template is used when
#       the tokenizer has one).
#
# Environment (defaults in brackets):
#   PALMOPT_MODEL        local model directory [synthetic Qwen2.5-0.5B shape]
#   PALMOPT_GSM8K        GSM8K-style JSONL with "question" and "answer" fields [synthetic arithmetic problems]
#   SMOKE_STEPS [20]  SMOKE_COMPLETION [256] tokens  SMOKE_GENERATIONS [8]  SMOKE_BATCH [16] completions/step
#   SMOKE_EVAL_PROMPTS [32]  SMOKE_EVAL_SAMPLES [4]  SMOKE_LR [2e-5]
#   SMOKE_SHAPE          "0.5b" or "tiny" (a 2-layer model: checks the script on a CPU in seconds) [0.5b]
#   SMOKE_TIMEOUT        seconds before the run is killed [470, under 8 minutes]
#   SMOKE_OUT            run directory [a fresh temporary directory]
#   PYTHON               interpreter [.venv/bin/python if present, else python3]
#
# Needs the `llm` extra (torch with CUDA, transformers, trl, peft).  Without a usable CUDA device it
# stops at once with exit status 2 and says why (CPU-only torch, no device visible, a device that
# fails a one-element allocation), unless SMOKE_SHAPE=tiny.  The defaults fit well under 8 minutes
# on one H100 (see docs/llm.md); the last line printed is a JSON summary.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec timeout --signal=KILL "${SMOKE_TIMEOUT:-470}" "$PYTHON" - <<'PY'
import json
import os
import random
import sys
import tempfile
import time

import numpy as np
import torch

from palmopt.oracle import checked
from oracles.llm import GRPOOracle
from oracles.llm.rewards import AnswerCorrectness, Brevity

env = os.environ.get
STEPS = int(env("SMOKE_STEPS", 20))
COMPLETION = int(env("SMOKE_COMPLETION", 256))
GENERATIONS = int(env("SMOKE_GENERATIONS", 8))
BATCH = int(env("SMOKE_BATCH", 16))
EVAL_PROMPTS = int(env("SMOKE_EVAL_PROMPTS", 32))
EVAL_SAMPLES = int(env("SMOKE_EVAL_SAMPLES", 4))
LR = float(env("SMOKE_LR", 2e-5))
SHAPE = env("SMOKE_SHAPE", "0.5b")
MODEL = env("PALMOPT_MODEL")



def cuda_problem():
    """Why no CUDA device can be used here (None when one can): checked before any model is built."""
    if torch.version.cuda is None:
        return f"torch {torch.__version__} is a CPU-only build; install a CUDA build of torch"
    if not torch.cuda.is_available():
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        hint = f" (CUDA_VISIBLE_DEVICES={visible!r})" if visible is not None else ""
        return f"torch (CUDA {torch.version.cuda}) sees no CUDA device{hint}: no GPU, or the driver is missing or too old"
    try:  # available but unusable: a busy or broken device, a driver/runtime mismatch, a MIG slice without memory
        torch.ones(1, device="cuda").add_(1).item()
    except Exception as exc:  # noqa: BLE001 - any failure means no usable device
        return f"a CUDA device is listed but unusable: {type(exc).__name__}: {exc}"
    return None


problem = cuda_problem()
cuda = problem is None
device = torch.cuda.get_device_name(0) if cuda else "cpu"
print(f"device: {device}; torch {torch.__version__}", flush=True)
if not cuda:
    if SHAPE != "tiny":
        print(f"error: no usable CUDA device: {problem}.  (SMOKE_SHAPE=tiny checks the script on a CPU.)", flush=True)
        sys.exit(2)
    print(f"note: no usable CUDA device ({problem}); SMOKE_SHAPE=tiny runs on the CPU", flush=True)

# -- GSM8K-style data: given (PALMOPT_GSM8K) or generated here -------------------------------
NAMES = ["Ava", "Ben", "Cara", "Dan", "Eli", "Fay", "Gus", "Hana"]
ITEMS = ["apples", "books", "coins", "marbles", "pens", "stickers"]


def synthetic_problems(n, seed):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        name, item = rng.choice(NAMES), rng.choice(ITEMS)
        a, b, c = rng.randint(2, 50), rng.randint(2, 50), rng.randint(1, 20)
        q = (
            f"{name} has {a} {item} . {name} buys {b} more {item} and then gives {c} {item} to a friend . "
            f"How many {item} does {name} have now ?"
        )
        ans = f"{name} has {a} + {b} = {a + b} {item} . Then {a + b} - {c} = {a + b - c} .\n#### {a + b - c}"
        out.append({"question": q, "answer": ans})
    return out


if env("PALMOPT_GSM8K"):
    with open(env("PALMOPT_GSM8K")) as f:
        problems = [json.loads(line) for line in f if line.strip()]
    random.Random(0).shuffle(problems)
else:
    problems = synthetic_problems(256 + EVAL_PROMPTS, seed=0)
train_problems, eval_problems = problems[:-EVAL_PROMPTS], problems[-EVAL_PROMPTS:]

# -- model and tokenizer --------------------------------------------------------------------
if MODEL:
    from transformers import AutoTokenizer

    base_model, tokenizer, model_name = MODEL, AutoTokenizer.from_pretrained(MODEL), MODEL
else:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    shape = {
        # Qwen2.5-0.5B-Instruct's published config (config.json)
        "0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                     num_key_value_heads=2, vocab_size=151936, max_position_embeddings=32768, rope_theta=1e6,
                     tie_word_embeddings=True),
        "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                     num_key_value_heads=2, vocab_size=2048, max_position_embeddings=2048,
                     tie_word_embeddings=True),
    }[SHAPE]
    words = ["<pad>", "<eos>", "<unk>", "####", "+", "-", "=", ".", "?", "\n", *map(str, range(10))]
    for p in problems:
        for w in (p["question"] + " " + p["answer"]).split():
            if w not in words:
                words.append(w)
    words += [f"<extra_{i}>" for i in range(shape["vocab_size"] - len(words))]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Digits(individual_digits=True)])
    tok.decoder = decoders.WordPiece(prefix="##")
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")
    config = Qwen2Config(**shape, pad_token_id=0, eos_token_id=1, bos_token_id=None)

    def base_model():  # a fresh model, the same on every call; the caller's random state is left alone
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return Qwen2ForCausalLM(config)

    model_name = f"random-qwen2-{SHAPE}"

chat = bool(getattr(tokenizer, "chat_template", None))
INSTRUCTION = " Think step by step, then give the final answer after ####."


def row(p):
    text = p["question"] + INSTRUCTION
    return {"prompt": [{"role": "user", "content": text}] if chat else text + "\n", "answer": p["answer"]}


train, held_out = [row(p) for p in train_problems], [row(p) for p in eval_problems]

out = env("SMOKE_OUT") or tempfile.mkdtemp(prefix="palmopt-gpu-smoke-")
oracle = GRPOOracle(
    base_model,
    [AnswerCorrectness(), Brevity(COMPLETION, unit="tokens")],
    train,
    held_out,
    out,
    tokenizer=tokenizer,
    model_name=model_name,
    config={
        "max_steps": STEPS,
        "learning_rate": LR,
        "per_device_train_batch_size": BATCH,
        "num_generations": GENERATIONS,
        "max_completion_length": COMPLETION,
        "eval_samples": EVAL_SAMPLES,
        "eval_batch_size": 64,
        "lora_r": 16,
        "lora_alpha": 32,
        "bf16": cuda,
        "model_dtype": "bfloat16" if cuda else None,
        "use_cpu": not cuda,
    },
)
print(f"oracle: {oracle}\nrun directory: {out}", flush=True)
w = np.array([0.5, 0.5])
t0 = time.perf_counter()
sol = checked(oracle)(w)
seconds = time.perf_counter() - t0
peak = torch.cuda.max_memory_allocated() if cuda else None
summary = {
    "device": device,
    "model": model_name,
    "w": w.tolist(),
    "values": sol.values.round(4).tolist(),
    "stderr": np.round(sol.stderr, 4).tolist(),
    "tokens_generated": sol.info["cost"]["tokens_generated"],
    "seconds_per_call": round(seconds, 1),
    "seconds_train": round(sol.info["seconds_train"], 1),
    "seconds_eval": round(sol.info["seconds_eval"], 1),
    "train_steps": STEPS,
    "completions_per_step": BATCH,
    "max_completion_length": COMPLETION,
    "eval": f"{len(held_out)} prompts x {EVAL_SAMPLES} samples",
    "peak_gpu_memory_gib": None if peak is None else round(peak / 2**30, 2),
    "adapter": sol.policy,
    "versions": sol.info["versions"],
}
print(f"time per call: {seconds:.1f} s (train {sol.info['seconds_train']:.1f} s, eval {sol.info['seconds_eval']:.1f} s)")
print("peak GPU memory: " + ("n/a (no CUDA)" if peak is None else f"{peak / 2**30:.2f} GiB"))
print(f"values [correctness, brevity]: {summary['values']} ± {summary['stderr']}")
print(json.dumps(summary))
PY
