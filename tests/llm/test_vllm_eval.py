"""oracles.llm.vllm_eval: vLLM evaluation sampling, against a stand-in ``vllm`` module.

vLLM needs a CUDA device and is not installed by the test extras: a stand-in ``vllm`` module
(injected into ``sys.modules``) records the ``LLM(...)``, ``SamplingParams(...)`` and
``LoRARequest(...)`` arguments and returns fixed token ids.  Where the real vLLM can be imported,
``test_arguments_are_accepted_by_the_real_vllm_classes`` also builds its ``SamplingParams`` and
``LoRARequest`` from the same arguments.
"""

import json
import sys
import types

import pytest

pytest.importorskip("trl", reason="oracles.llm needs the `llm` extra (torch, transformers, trl, peft)")

from oracles.llm import GRPOOracleConfig, vllm_eval  # noqa: E402
from oracles.llm.hf import sample as hf_sample  # noqa: E402

from .tiny import EVAL, WORDS, make_model, make_tokenizer  # noqa: E402

EOS = WORDS.index("<eos>")
A, B = WORDS.index("a"), WORDS.index("b")


class _Recorder:
    """The stand-in ``vllm`` module's record of what it was given."""

    def __init__(self):
        self.llm_kwargs, self.params, self.generate_calls, self.events = [], [], [], []


def _stand_in(rec):
    class LLM:
        def __init__(self, **kwargs):
            rec.llm_kwargs.append(kwargs)
            rec.events.append("build")

        def generate(self, prompts, params, *, use_tqdm, lora_request):
            rec.generate_calls.append({"prompts": prompts, "params": params, "lora": lora_request})
            rec.events.append("generate")
            # completion j of every prompt: "a" j times, then "b", end-of-sequence, and a token after it
            return [
                types.SimpleNamespace(
                    outputs=[
                        types.SimpleNamespace(index=j, token_ids=(A,) * j + (B, EOS, A))
                        for j in reversed(range(p.kwargs["n"]))  # out of order: sorted by index
                    ]
                )
                for p in params
            ]

        def sleep(self, level):
            rec.events.append(f"sleep{level}")

        def wake_up(self):
            rec.events.append("wake")

    class SamplingParams:
        def __init__(self, **kwargs):
            self.kwargs = kwargs
            rec.params.append(kwargs)

    class LoRARequest:
        def __init__(self, lora_name, lora_int_id, lora_path):
            self.args = (lora_name, lora_int_id, lora_path)

    vllm = types.ModuleType("vllm")
    vllm.LLM, vllm.SamplingParams = LLM, SamplingParams
    lora = types.ModuleType("vllm.lora")
    request = types.ModuleType("vllm.lora.request")
    request.LoRARequest = LoRARequest
    vllm.lora, lora.request = lora, request
    return {"vllm": vllm, "vllm.lora": lora, "vllm.lora.request": request}


@pytest.fixture
def fake_vllm(monkeypatch):
    rec = _Recorder()
    for name, module in _stand_in(rec).items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(vllm_eval, "_STATE", {"key": None, "llm": None, "asleep": False, "lora_ids": {}})
    return rec


@pytest.fixture
def base(tmp_path):
    path = tmp_path / "base"
    make_model().config.save_pretrained(path)  # config.json: all vLLM and the eos look-up read
    return str(path)


def _adapter(path, r=8):
    path.mkdir()
    (path / "adapter_config.json").write_text(json.dumps({"r": r, "peft_type": "LORA"}))
    (path / "adapter_model.safetensors").write_bytes(b"weights")
    return str(path)


def _sample(base, adapter, config=None, rows=EVAL, n=3, tokenizer=None, **kwargs):
    cfg = GRPOOracleConfig.from_dict({"max_completion_length": 4, **(config or {})})
    return vllm_eval.sample(
        base,
        adapter,
        tokenizer or make_tokenizer(),
        rows,
        n,
        sampling=cfg.sampling(),
        max_new_tokens=cfg.max_completion_length,
        seed=kwargs.pop("seed", 7),
        model_dtype=cfg.model_dtype,
        **kwargs,
    )


def test_every_sampling_setting_maps_onto_sampling_params(fake_vllm, base, tmp_path):
    adapter = _adapter(tmp_path / "adapter")
    _sample(base, adapter)
    defaults = fake_vllm.params[0]
    assert {k: v for k, v in defaults.items() if k != "seed"} == {
        "n": 3,
        "max_tokens": 4,
        "stop_token_ids": [EOS],
        "detokenize": False,
        "temperature": 1.0,
        "top_p": 1.0,
        "top_k": 0,  # off, in both libraries
        "min_p": 0.0,
        "repetition_penalty": 1.0,
    }
    config = {
        "temperature": 0.9,
        "eval_temperature": 0.7,
        "trl_args": {
            "min_p": 0.1,
            "repetition_penalty": 1.2,
            "generation_kwargs": {"top_k": 5, "min_new_tokens": 2, "max_new_tokens": 3},
        },
    }
    _sample(base, adapter, config, n=2)
    mapped = fake_vllm.params[-1]
    assert {k: mapped[k] for k in ("n", "temperature", "top_p", "top_k", "min_p", "repetition_penalty")} == {
        "n": 2,
        "temperature": 0.7,
        "top_p": 1.0,
        "top_k": 5,
        "min_p": 0.1,
        "repetition_penalty": 1.2,
    }
    assert (mapped["min_tokens"], mapped["max_tokens"]) == (2, 3)  # generation_kwargs last, as in hf.sample


def test_sampler_is_a_drop_in_for_hf_sample(fake_vllm, base, tmp_path):
    adapter = _adapter(tmp_path / "adapter")
    cfg = GRPOOracleConfig(temperature=0.9, trl_args={"min_p": 0.1, "generation_kwargs": {"top_k": 5}})
    tok = make_tokenizer()
    args = (tok, EVAL, 2)
    kwargs = {"max_new_tokens": 4, "seed": 3}
    direct = vllm_eval.sample(base, adapter, *args, sampling=cfg.sampling(), **kwargs)
    # hf.sample's call, as GRPOOracle makes it: temperature, batch size, the sampling settings last
    run = vllm_eval.sampler(base, adapter)
    hf_style = run(None, *args, temperature=0.9, batch_size=64, generation_kwargs=cfg.sampling(), **kwargs)
    assert hf_style == direct and len(fake_vllm.params) == 2 * len(EVAL)
    assert fake_vllm.params[: len(EVAL)] == fake_vllm.params[len(EVAL) :]
    with pytest.raises(ValueError, match="do_sample=False"):
        run(None, *args, temperature=0.9, do_sample=False, **kwargs)


def test_seeds_per_prompt_are_reproducible_and_distinct(fake_vllm, base, tmp_path):
    adapter = _adapter(tmp_path / "adapter")
    _sample(base, adapter, seed=7)
    first = [p["seed"] for p in fake_vllm.params]
    _sample(base, adapter, seed=7)
    _sample(base, adapter, seed=8)
    k = len(EVAL)
    assert len(set(first)) == k and [p["seed"] for p in fake_vllm.params[k : 2 * k]] == first
    assert not set(first) & {p["seed"] for p in fake_vllm.params[2 * k :]}


def test_one_engine_per_process_with_lora_requests(fake_vllm, base, tmp_path):
    a, b = _adapter(tmp_path / "a"), _adapter(tmp_path / "b", r=12)
    _sample(base, a, engine_kwargs={"gpu_memory_utilization": 0.3})
    _sample(base, a, engine_kwargs={"gpu_memory_utilization": 0.3})
    assert fake_vllm.llm_kwargs == [
        {
            "model": base,
            "dtype": "auto",
            "seed": 0,
            "enable_lora": True,
            "max_lora_rank": 8,
            "enable_sleep_mode": True,
            "gpu_memory_utilization": 0.3,
        }
    ]
    assert fake_vllm.events == ["build", "generate", "sleep1", "wake", "generate", "sleep1"]
    loras = [c["lora"].args for c in fake_vllm.generate_calls]
    assert loras[0] == loras[1] == ("adapter-1", 1, a)
    # a rank-12 adapter needs vLLM's next rank, 16: a new engine; a rewritten adapter gets a new id
    _sample(base, b, config={"model_dtype": "bfloat16"}, sleep=False)
    assert len(fake_vllm.llm_kwargs) == 2 and fake_vllm.llm_kwargs[-1]["max_lora_rank"] == 16
    assert fake_vllm.llm_kwargs[-1]["dtype"] == "bfloat16" and fake_vllm.events[-1] == "generate"
    assert fake_vllm.generate_calls[-1]["lora"].args[1] == 2
    (tmp_path / "a" / "adapter_model.safetensors").write_bytes(b"other weights")
    _sample(base, a, max_lora_rank=16, sleep=False)
    assert fake_vllm.generate_calls[-1]["lora"].args[1] == 3


def test_outputs_have_the_shape_of_hf_sample(fake_vllm, base, tmp_path):
    tok = make_tokenizer()
    texts, ids = _sample(base, _adapter(tmp_path / "adapter"), n=3, tokenizer=tok)
    ref_texts, ref_ids = hf_sample(
        make_model(), tok, EVAL, 3, max_new_tokens=4, temperature=1.0, seed=0, batch_size=8
    )
    assert len(texts) == len(ref_texts) == len(ids) == len(ref_ids) == 3 * len(EVAL)
    assert all(isinstance(t, str) for t in texts + ref_texts)
    assert all(isinstance(x, int) for seq in ids + ref_ids for x in seq)
    # prompt-major, completions sorted by index, cut after end-of-sequence (kept, as TRL passes it)
    assert ids[:3] == [[B, EOS], [A, B, EOS], [A, A, B, EOS]] and ids[3:6] == ids[:3]
    assert texts[:3] == ["b", "a b", "a a b"]
    prompts = fake_vllm.generate_calls[0]["prompts"]
    assert prompts == [{"prompt_token_ids": tok(r["prompt"])["input_ids"]} for r in EVAL]


def test_chat_prompts_use_the_chat_template(fake_vllm, base, tmp_path):
    tok = make_tokenizer()
    tok.chat_template = (
        "{% for m in messages %}{{ m['content'] }} {% endfor %}{% if add_generation_prompt %}->{% endif %}"
    )
    rows = [{"prompt": [{"role": "user", "content": "need : a b"}]}]
    texts, _ = _sample(base, _adapter(tmp_path / "adapter"), rows=rows, n=2, tokenizer=tok)
    rendered = tok.apply_chat_template(rows[0]["prompt"], add_generation_prompt=True, tokenize=False)
    assert rendered == "need : a b ->"
    ids = tok(rendered, add_special_tokens=False)["input_ids"]
    assert fake_vllm.generate_calls[0]["prompts"] == [{"prompt_token_ids": ids}]
    assert texts == [[{"role": "assistant", "content": "b"}], [{"role": "assistant", "content": "a b"}]]


def test_the_model_generation_config_end_of_sequence_ids_stop_too(fake_vllm, base, tmp_path):
    from transformers import GenerationConfig

    GenerationConfig(eos_token_id=[EOS, A]).save_pretrained(base)
    texts, ids = _sample(base, _adapter(tmp_path / "adapter"), n=2)
    assert fake_vllm.params[0]["stop_token_ids"] == [EOS, A]
    assert ids[:2] == [[B, EOS], [A]]  # cut at the first of either, as hf.trim does


@pytest.mark.parametrize(
    "config, kwargs, error, match",
    [
        ({"trl_args": {"generation_kwargs": {"typical_p": 0.9}}}, {}, ValueError, r"\['typical_p'\] have no exact"),
        ({"trl_args": {"generation_kwargs": {"no_repeat_ngram_size": 2}}}, {}, ValueError, "no_repeat_ngram_size"),
        ({"trl_args": {"generation_kwargs": {"do_sample": False}}}, {}, ValueError, "do_sample=False"),
        ({}, {"engine_kwargs": {"enable_lora": False}}, ValueError, r"may not set \['enable_lora'\]"),
        ({}, {"max_lora_rank": 4}, ValueError, r"`max_lora_rank` \(4\) is below the adapter's LoRA rank \(8\)"),
    ],
)
def test_refusals(fake_vllm, base, tmp_path, config, kwargs, error, match):
    with pytest.raises(error, match=match):
        _sample(base, _adapter(tmp_path / "adapter"), config, **kwargs)
    assert fake_vllm.llm_kwargs == []  # refused before an engine is built


def test_a_model_factory_is_refused_with_the_reason(fake_vllm, tmp_path):
    with pytest.raises(ValueError, match="vLLM loads the base model itself, by name or path; a model factory"):
        _sample(make_model, _adapter(tmp_path / "adapter"))
    with pytest.raises(FileNotFoundError, match="missing adapter_config.json"):
        _sample(str(tmp_path), str(tmp_path))


def test_without_vllm_the_error_names_the_extra(monkeypatch, base, tmp_path):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError
    with pytest.raises(ImportError, match=r"the `vllm` extra"):
        _sample(base, _adapter(tmp_path / "adapter"))


def test_arguments_are_accepted_by_the_real_vllm_classes(base, tmp_path):
    sampling_params = pytest.importorskip("vllm.sampling_params", reason="vLLM is not installed (the `vllm` extra)")
    from vllm.lora.request import LoRARequest

    cfg = GRPOOracleConfig(trl_args={"min_p": 0.1, "repetition_penalty": 1.2, "generation_kwargs": {"top_k": 5}})
    kwargs = vllm_eval.sampling_params_kwargs(cfg.sampling(), n=2, max_new_tokens=4, seed=3, stop_token_ids=[EOS])
    params = sampling_params.SamplingParams(**kwargs)
    assert {k: getattr(params, k) for k in kwargs} == kwargs
    assert LoRARequest("adapter-1", 1, str(tmp_path)).lora_int_id == 1


@pytest.fixture
def trl_trainer_loaded():
    from trl import GRPOTrainer  # noqa: F401  (TRL probes for vLLM when it loads: before the stand-in)


def test_grpo_oracle_evaluates_with_vllm(trl_trainer_loaded, fake_vllm, tmp_path):
    from oracles.llm import GRPOOracle
    from oracles.llm.rewards import Brevity, Coverage

    from .tiny import TINY, TRAIN

    base = str(tmp_path / "base")
    make_model().save_pretrained(base)
    config = {**TINY, "eval_backend": "vllm"}
    args = ([Brevity(3), Coverage()], TRAIN, EVAL, str(tmp_path / "run"))
    with pytest.raises(ValueError, match="`eval_backend='vllm'` need the base model as a name or path"):
        GRPOOracle(make_model, *args, tokenizer=make_tokenizer(), config=config)
    with pytest.raises(ValueError, match="samples in one process"):
        GRPOOracleConfig(eval_backend="vllm", processes=2, per_device_train_batch_size=4)
    oracle = GRPOOracle(base, *args, tokenizer=make_tokenizer(), config=config)
    sol = oracle([0.5, 0.5])
    assert sol.info["cost"]["device"] == "vllm" and fake_vllm.llm_kwargs[0]["model"] == base
    assert fake_vllm.generate_calls[0]["lora"].args[2].endswith("adapter")  # the call's saved adapter
    assert {p["n"] for p in fake_vllm.params} == {TINY["eval_samples"]}
    ev = oracle.evaluate(sol.policy, seed=3, repeats=2)
    assert fake_vllm.generate_calls[-1]["lora"].args[2] == sol.policy and ev.info["cost"]["device"] == "vllm"
    assert len(fake_vllm.llm_kwargs) == 1 and {p["n"] for p in fake_vllm.params[-len(EVAL) :]} == {4}
