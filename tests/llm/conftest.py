import pytest


@pytest.fixture(autouse=True, scope="package")
def one_thread():
    """Tiny models run several times faster on one thread (OpenMP start-up per op); restored afterwards."""
    try:
        import torch
    except ImportError:  # the reward and diversity tests run without the `llm` extra
        yield
        return
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="package")
def trained(tmp_path_factory):
    """One oracle and two calls, shared by the tests that only read them."""
    pytest.importorskip("trl", reason="oracles.llm needs the `llm` extra (torch, transformers, trl, peft)")
    from palmopt.oracle import checked

    from .tiny import make_oracle

    run = tmp_path_factory.mktemp("grpo")
    oracle = make_oracle(str(run))
    sols = [checked(oracle)(w) for w in ([1.0, 0.0], [0.0, 1.0])]
    return oracle, sols
