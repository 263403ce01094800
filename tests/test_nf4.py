"""nf4: 4-bit NF4 layers on the CPU keep their backward after a no-grad generation (bitsandbytes' CPU repack is off).

bitsandbytes 0.50.2 repacks a 4-bit weight in place on its first eval-mode forward without gradients, on CPUs whose
native library reports AVX512-BF16 (this CI's AMD EPYC does), and the packed path has no backward; it also fails on
layers narrower than its 32-row tiles. The rehearsal generates (evaluation before training) and then trains LoRA on
the same 4-bit model, exactly that order.
"""

from itertools import pairwise

import pytest

torch = pytest.importorskip("torch")
bnb = pytest.importorskip("bitsandbytes")

from gemma_helpers import nf4  # noqa: E402


def four_bit(*widths: int, seed: int = 0):
    """A stack of NF4 Linear4bit layers of these widths (the hub stand-in's vision tower is 32 wide)."""
    torch.manual_seed(seed)
    layers = []
    for n_in, n_out in pairwise(widths):
        layer = bnb.nn.Linear4bit(n_in, n_out, bias=False, compute_dtype=torch.float32, quant_type="nf4")
        layer.weight = bnb.nn.Params4bit(torch.randn(n_out, n_in) / n_in ** 0.5, requires_grad=False,
                                         quant_type="nf4")
        layers.append(layer)
    return torch.nn.Sequential(*layers).to("cpu")  # quantizes


def input_grad(model, x):
    model.train()
    x = x.clone().requires_grad_(True)
    model(x).square().sum().backward()
    return x.grad


@pytest.mark.parametrize("widths", [(64, 64, 64), (32, 48, 32)])
def test_generation_then_training_keeps_the_backward(widths):
    model = four_bit(*widths)
    assert nf4.keep_trainable(model) == len(widths) - 1
    x = torch.randn(3, widths[0])
    before = input_grad(model, x)
    model.eval()
    with torch.no_grad():
        model(torch.randn(5, widths[0]))  # a generation's forward: eval mode, no gradient
    assert nf4.packed_layers(model) == []
    after = input_grad(model, x)
    assert after is not None and torch.equal(before, after)


def test_without_it_this_cpu_repacks_and_loses_the_backward():
    """The trap itself, where bitsandbytes sees AVX512-BF16: if this stops failing, bitsandbytes fixed it upstream."""
    from bitsandbytes.functional import has_avx512bf16

    if not has_avx512bf16():
        pytest.skip("no AVX512-BF16 here: bitsandbytes does not repack on this CPU")
    model = four_bit(64, 64)
    model.eval()
    with torch.no_grad():
        model(torch.randn(2, 64))
    assert nf4.packed_layers(model) == ["0"]
    with pytest.warns(UserWarning, match="autograd kernel was not registered"):
        grad = input_grad(model, torch.randn(3, 64))
    assert grad is None
    # keep_trainable also undoes a repack already made: the backward comes back
    nf4.keep_trainable(model)
    assert nf4.packed_layers(model) == [] and input_grad(model, torch.randn(3, 64)) is not None


def test_a_16bit_model_needs_nothing():
    assert nf4.keep_trainable(torch.nn.Linear(4, 4)) == 0
