from __future__ import annotations

import dataclasses
import hashlib
import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SAMPLES

from afdetect.compress.accounting import (
    GLOBAL_BITS,
    LAYER_SCALAR_BITS,
    integer_model_sizes,
    layer_size,
    stored_bits,
    totals,
)
from afdetect.compress.bitwidth import choose_layer_bits, quantisation_errors, widen_within_budget
from afdetect.compress.integer import IntegerLayer, IntegerModel, simulate_logits, to_integer
from afdetect.compress.network import CompressibleNet, QuantSpec, fold_batchnorm
from afdetect.compress.prune import (
    SENSITIVITY_GRID,
    GradualPruner,
    allocate_sparsity,
    group_sizes,
    magnitude_mask,
    polynomial_sparsity,
    sensitivity,
)
from afdetect.compress.quantise import pow2_quantise, window_size
from afdetect.compress.recipe import calibrate_fractions, calibration_batch
from afdetect.compress.sparse_index import common_shift, decode, encode
from afdetect.data.store import load_dataset
from afdetect.errors import InputError
from afdetect.model import AFNet, CNNConfig
from afdetect.model.rr import RRConfig
from afdetect.runtime.engine import IntegerEngine
from afdetect.runtime.format import decode_model, encode_model
from afdetect.train import FitConfig, fit

SMALL = CNNConfig(channels=(4, 6, 8), kernel_sizes=(7, 5, 3))
SMALL_RR = dataclasses.replace(SMALL, rr=RRConfig())


@pytest.fixture(scope="module")
def samples():
    return load_dataset(SAMPLES, progress=False, cache_dir=None)


def _trained_like_afnet(seed: int = 0, config: CNNConfig = SMALL) -> AFNet:
    """An AFNet with non-trivial BatchNorm statistics (as after training)."""
    torch.manual_seed(seed)
    net = AFNet(config)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                module.weight.uniform_(0.5, 2.0)
                module.bias.uniform_(-0.5, 0.5)
                module.running_mean.uniform_(-0.3, 0.3)
                module.running_var.uniform_(0.2, 3.0)
    return net.eval()


def _pruned(sparsity: float = 0.6, granularity: str = "weight",
            config: CNNConfig = SMALL) -> CompressibleNet:
    net = fold_batchnorm(_trained_like_afnet(config=config))
    groups = group_sizes(net, granularity)
    for i, (weight, _) in enumerate(net.weighted_layers()):
        net.mask(i).copy_(magnitude_mask(weight, sparsity, groups[i]))
    net.apply_masks()
    return net


def _quantised(samples, sparsity: float = 0.6, granularity: str = "weight",
               layer_bits: list[int] | None = None, config: CNNConfig = SMALL
               ) -> CompressibleNet:
    net = _pruned(sparsity, granularity, config)
    x = calibration_batch(samples, 12, seed=0)
    spec = QuantSpec(weight_bits=4, act_bits=8, input_bits=12)
    net.enable_quantisation(spec, calibrate_fractions(net, x, spec, 99.9), layer_bits)
    return net


def test_batchnorm_folding_preserves_outputs(samples) -> None:
    model = _trained_like_afnet()
    folded = fold_batchnorm(model)
    x = torch.from_numpy(samples.signals[0])[None, None, :]
    with torch.no_grad():
        assert torch.allclose(model(x), folded(x), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("layer_bits", [None, [2, 3, 5, 4]])
def test_every_kept_weight_is_a_signed_power_of_two_in_its_window(samples, layer_bits
                                                                   ) -> None:
    net = _quantised(samples, layer_bits=layer_bits)
    widths = layer_bits or [4] * net.n_layers
    for i in range(net.n_layers):
        w = net.effective_weight(i).detach().double()
        kept = w[net.mask(i) > 0]
        exponents = torch.log2(kept.abs())
        assert torch.equal(exponents, torch.round(exponents))  # exact powers of two
        assert exponents.max() <= int(net.e_max[i])
        assert exponents.min() >= int(net.e_max[i]) - window_size(widths[i]) + 1
        assert torch.all(w[net.mask(i) == 0] == 0)


def test_pow2_rounds_to_nearest_on_the_linear_scale() -> None:
    w = torch.tensor([0.74, 0.76, -0.3, 1.49, 1.51, 0.0])
    assert pow2_quantise(w, e_max=0, bits=4).tolist() == [0.5, 1.0, -0.25, 1.0, 1.0, 0.0]
    # window of 8 exponents: 2^-7 is the floor, 2^0 the ceiling
    assert pow2_quantise(torch.tensor([1e-6, 5.0]), e_max=0, bits=4).tolist() == [2**-7, 1.0]


def test_pruned_weights_stay_zero_through_fine_tuning(samples, tmp_path: Path) -> None:
    net = fold_batchnorm(_trained_like_afnet())
    pruner = GradualPruner(net, [0.5] * net.n_layers, [1] * net.n_layers, every=1,
                           end_fraction=0.5)
    fit(net, FitConfig(epochs=2, batch_size=4, crop_seconds=8.0, lr=1e-2), samples, tmp_path,
        fingerprint={"t": 1}, n_classes=4, progress=False, on_step=pruner.on_step,
        after_step=pruner.after_step)
    for i, (weight, _) in enumerate(net.weighted_layers()):
        mask = net.mask(i)
        assert torch.all(weight[mask == 0] == 0)
        assert int(mask.sum()) == round(0.5 * mask.numel())


def test_polynomial_schedule_and_allocation() -> None:
    assert polynomial_sparsity(0, 100, 0.9) == 0.0
    assert polynomial_sparsity(75, 100, 0.9) == pytest.approx(0.9)
    assert polynomial_sparsity(100, 100, 0.9) == pytest.approx(0.9)
    assert 0.0 < polynomial_sparsity(20, 100, 0.9) < polynomial_sparsity(40, 100, 0.9) < 0.9
    # errors at sparsity 0.5 / 0.9: layer 0 is fragile, layer 1 robust. At tolerance t in
    # (0.2, 0.3): s0 = 0.3 + t, s1 = 0.3 + 2t; a 0.7 target needs s0 + s1 = 1.4, t = 0.8/3
    errors = np.array([[0.2, 0.6], [0.1, 0.3]])
    s = allocate_sparsity(errors, [100, 100], 0.7, (0.5, 0.9))
    assert s == pytest.approx([0.3 + 0.8 / 3, 0.3 + 1.6 / 3], abs=1e-6)


def test_sensitivity_of_a_model_with_rr_features(samples) -> None:
    """The classifier of an RR model reads the pooled features and the RR features: its
    output error is measured on both, as the model computes it."""
    net = _pruned(0.0, config=SMALL_RR)
    x = calibration_batch(samples, 4, seed=0)
    errors = sensitivity(net, x, group_sizes(net, "weight"))
    assert errors.shape == (net.n_layers, len(SENSITIVITY_GRID))
    assert np.all(np.isfinite(errors)) and np.all(errors[:, -1] > 0)


def test_index_encodings_hand_computed() -> None:
    mask = np.array([[1, 0, 0], [0, 0, 1]], dtype=bool)[:, :, None]
    # bitmap 6; relative r=2: entries [0, 3(filler), 1] = 6 bits; CSR 2*2 + 2*2 = 8
    enc = encode(mask)
    assert (enc.scheme, enc.bits) == ("bitmap", 6)
    sparse = np.zeros((4, 64, 1), dtype=bool)
    sparse[0, 5] = sparse[3, 60] = True  # positions 5 and 252
    enc = encode(sparse)
    # relative r=5 (escape 31): [5, 31*7=217 -> 7 fillers, 29] = 9 entries * 5 = 45 bits;
    # r=6 (escape 63): [5, 63, 63, 63, 57] = 30; r=7: [5, 127, 119] = 21; r=8: [5, 246] = 16
    # CSR: 4 rows * 7 bits + 2 * 6 bits = 40; bitmap 256
    assert (enc.scheme, enc.param, enc.bits) == ("relative", 8, 16)
    dense_rows = np.zeros((2, 256, 1), dtype=bool)
    dense_rows[:, ::16] = True  # 32 kept, evenly spread
    enc = encode(dense_rows)
    # gaps of 15: r=4 reserves 15 for fillers, so 64 entries = 256 bits; r=5: 32 * 5 = 160;
    # CSR 2 * 9 + 32 * 8 = 274; bitmap 512
    assert (enc.scheme, enc.param, enc.bits) == ("relative", 5, 160)
    for m in (mask, sparse, dense_rows):
        e = encode(m)
        assert np.array_equal(decode(e.scheme, e.param, e.streams, e.entries, m.shape), m)


def test_kernel_pruning_and_its_index_hand_computed() -> None:
    # kernels (L2 norms): [3,4] -> 5, [1,1] -> 1.41, [0,2] -> 2, [6,0] -> 6
    weight = torch.tensor([[[3.0, 4.0], [1.0, 1.0]], [[0.0, 2.0], [6.0, 0.0]]])
    mask = magnitude_mask(weight, 0.5, group=2)
    assert mask.tolist() == [[[1, 1], [0, 0]], [[0, 0], [1, 1]]]
    assert magnitude_mask(weight, 0.75, group=1).tolist() == [[[0, 1], [0, 0]],
                                                             [[0, 0], [1, 0]]]
    net = CompressibleNet(SMALL)  # conv1 has one input channel: pruned weight by weight
    assert group_sizes(net, "kernel") == [1, 5, 3, 1]
    assert group_sizes(net, "weight") == [1, 1, 1, 1]
    kernels = np.array([[1, 0, 0], [0, 0, 1]], dtype=bool)
    whole = np.repeat(kernels[:, :, None], 4, axis=2)  # 8 of 24 weights in 2 kernels
    # per weight: bitmap 24; relative r=2 needs 8 entries; per kernel: bitmap 6 bits
    enc = encode(whole)
    assert (enc.scheme, enc.bits) == ("kernel-bitmap", 6)
    assert np.array_equal(decode(enc.scheme, enc.param, enc.streams, enc.entries,
                                 whole.shape), whole)
    ragged = whole.copy()
    ragged[0, 0, 1] = False  # no longer whole kernels: a per-weight scheme
    assert not encode(ragged).scheme.startswith("kernel-")


def test_size_accounting_hand_computed() -> None:
    mask = np.array([[1, 0, 0], [0, 0, 1]], dtype=bool)[:, :, None]
    layer = layer_size("conv1", mask, np.array([3, -4]), code_bits=4)
    # codes 2*4, bitmap 6, biases 2*3 (3 and -4 need 3 bits; no shared zero bits), scalars 48
    assert (layer.code_bits, layer.index_bits, layer.bias_bits) == (8, 6, 6)
    assert layer.stored_bits == 8 + 6 + 6 + LAYER_SCALAR_BITS
    t = totals([layer], baseline_params=100)
    assert t["stored_bits"] == layer.stored_bits + GLOBAL_BITS
    assert t["compression_ratio"] == pytest.approx(3200 / t["stored_bits"])
    assert t["weights_only_ratio"] == pytest.approx(32 * 6 / (8 + 6))


def test_biases_are_stored_without_their_shared_zero_bits() -> None:
    assert common_shift(np.array([12, -8, 0, 20])) == 2
    assert common_shift(np.array([0, 0])) == 0
    mask = np.ones((3, 1, 1), dtype=bool)
    layer = layer_size("conv1", mask, np.array([12, -8, 20]), code_bits=3)
    # stored as 3, -2, 5 (shift 2): 4 bits each
    assert layer.bias_bits == 3 * 4


@pytest.mark.parametrize(("layer_bits", "config"),
                         [(None, SMALL), ([3, 2, 4, 3], SMALL), (None, SMALL_RR)])
def test_engine_equals_integer_simulation_and_qat_on_real_records(samples, layer_bits,
                                                                  config) -> None:
    net = _quantised(samples, layer_bits=layer_bits, config=config)
    model = to_integer(net)
    engine = IntegerEngine(model)
    for signal in samples.signals:
        expected = simulate_logits(model, signal)
        assert np.array_equal(engine.logits(signal), expected)
        with torch.no_grad():
            qat = net(torch.from_numpy(signal)[None, None, :])[0].double().numpy()
        assert np.allclose(engine.float_logits(signal), qat, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(("granularity", "layer_bits"),
                         [("weight", None), ("kernel", None), ("kernel", [2, 3, 2, 5])])
def test_file_round_trip_and_refusals(samples, granularity: str, layer_bits) -> None:
    model = to_integer(_quantised(samples, granularity=granularity, layer_bits=layer_bits))
    assert model.weight_bits == (layer_bits or [4] * len(model.layers))
    schemes = {encode(layer.mask).scheme for layer in model.layers}
    assert any(s.startswith("kernel-") for s in schemes) == (granularity == "kernel")
    data = encode_model(model, {"classes": ["N", "A", "O", "~"]})
    again, metadata = decode_model(data)
    assert metadata == {"classes": ["N", "A", "O", "~"]}
    for a, b in zip(model.layers, again.layers, strict=True):
        for field in ("mask", "sign", "shift", "bias"):
            assert np.array_equal(getattr(a, field), getattr(b, field)), field
        assert (a.e_min, a.in_frac, a.out_frac, a.bits) == (b.e_min, b.in_frac, b.out_frac,
                                                             b.bits)
    with pytest.raises(InputError, match="checksum mismatch"):
        decode_model(data[:-100], "m.afq")
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x01
    with pytest.raises(InputError, match="checksum mismatch"):
        decode_model(bytes(flipped), "m.afq")
    newer = bytearray(data)
    struct.pack_into("<H", newer, 4, 99)
    with pytest.raises(InputError, match="version 99 is not supported"):
        decode_model(bytes(newer), "m.afq")
    with pytest.raises(InputError, match="bad magic"):
        decode_model(b"PK\x03\x04" + data[4:], "m.afq")


def test_hand_built_integer_model() -> None:
    """One conv (1->1 channel, kernel 1) and a 1->2 classifier, checked by hand."""
    conv = IntegerLayer(mask=np.ones((1, 1, 1), bool), sign=np.ones((1, 1, 1), np.int8),
                        shift=np.array([[[1]]], np.int8), e_min=-1, bias=np.array([0]),
                        in_frac=1, out_frac=1, stride=1, padding=0, bits=2)
    fc = IntegerLayer(mask=np.ones((2, 1, 1), bool), sign=np.array([[[1]], [[-1]]], np.int8),
                      shift=np.zeros((2, 1, 1), np.int8), e_min=0, bias=np.array([1, 0]),
                      in_frac=1, out_frac=0, stride=1, padding=0, bits=2)
    model = IntegerModel([conv, fc], act_bits=8, input_bits=8, input_frac=1)
    x = np.array([1.0, -1.0, 2.0, 0.5])  # -> input ints [2, -2, 4, 1]
    # conv weight 2^(-1+1) = 1: acc = in << 1 = [4, -4, 8, 2] (acc frac 2); requant shift
    # 2 - 1 = 1: (acc + 1) >> 1 = [2, -2, 4, 1]; relu [2, 0, 4, 1]; pool [2, 4]; sum 6, T = 2
    # logits: [6 + 1*2, -6 + 0*2] = [8, -6]; float scale 2^(0-1) / 2: [2.0, -1.5], which is
    # relu(x) = [1, 0, 2, .5] -> pool [1, 2] -> mean 1.5 -> [1.5 + 0.5, -1.5]
    assert simulate_logits(model, x).tolist() == [8, -6]
    engine = IntegerEngine(model)
    assert engine.logits(x).tolist() == [8, -6]
    assert engine.float_logits(x).tolist() == [2.0, -1.5]
    assert json.dumps(decode_model(encode_model(model, {}))[1]) == "{}"


def _as_version_2(data: bytes) -> bytes:
    """The same model in format version 2: one ``weight_bits`` for all layers."""
    header_len = struct.unpack_from("<I", data, 6)[0]
    header = json.loads(data[10:10 + header_len])
    bits = {layer.pop("bits") for layer in header["layers"]}
    assert len(bits) == 1
    header["weight_bits"] = bits.pop()
    new_header = json.dumps(header).encode()
    body = struct.pack("<4sHI", b"AFDQ", 2, len(new_header)) + new_header \
        + data[10 + header_len:-32]
    return body + hashlib.sha256(body).digest()


def test_version_2_files_with_one_width_still_load(samples) -> None:
    model = to_integer(_quantised(samples, granularity="kernel"))
    again, _ = decode_model(_as_version_2(encode_model(model, {})))
    for a, b in zip(model.layers, again.layers, strict=True):
        assert np.array_equal(a.shift, b.shift) and np.array_equal(a.sign, b.sign)
        assert a.bits == b.bits == 4


def test_checkpoints_from_before_per_layer_widths_load_with_one_width(samples) -> None:
    net = _quantised(samples)
    state = net.state_dict()
    del state["layer_bits"]
    again = CompressibleNet(SMALL)
    again.fold()
    again.load_state_dict(state)
    assert again.layer_bits.tolist() == [4] * net.n_layers


def test_widening_follows_error_per_added_bit_within_the_budget() -> None:
    # gains per added bit: layer 0 0.5/10, layer 1 0.9/100, layer 2 0.2/1, layer 3 none
    errors = np.array([[0.6, 0.1], [1.0, 0.1], [0.3, 0.1], [0.1, 0.1]])
    kept = [10, 100, 1, 50]
    added = []

    def fits(widths: list[int]) -> bool:
        added.append(widths)
        return sum(k for k, b in zip(kept, widths, strict=True) if b == 3) <= 20

    assert widen_within_budget(errors, kept, 2, fits) == [3, 2, 3, 2]
    assert added == [[2, 2, 3, 2], [3, 2, 3, 2], [3, 3, 3, 2]]  # layer 1 tried, too big


def test_a_second_extra_bit_goes_where_it_removes_most_error() -> None:
    # layer 0's window is too narrow at 3 bits (as after folding a heavily pruned layer)
    errors = np.array([[10.0, 5.0, 0.1], [1.0, 0.2, 0.1]])
    kept = [10, 10]

    def fits(widths: list[int]) -> bool:
        return sum((b - 2) * k for k, b in zip(kept, widths, strict=True)) <= 20

    assert widen_within_budget(errors[:, :2], kept, 2, fits) == [3, 3]
    assert widen_within_budget(errors, kept, 2, fits) == [4, 2]
    assert widen_within_budget(errors, kept, 2, lambda w: True) == [4, 4]


def test_layer_bits_chosen_within_the_size_budget(samples) -> None:
    x = calibration_batch(samples, 12, seed=0)
    spec = QuantSpec(weight_bits=2, act_bits=8, input_bits=12)
    net = _pruned()
    torch.manual_seed(1)
    with torch.no_grad():  # magnitudes over several octaves, as in a trained net
        for weight, _ in net.weighted_layers():
            weight.mul_(torch.exp2(2 * torch.randn_like(weight)))
    fractions = calibrate_fractions(net, x, spec, 99.9)
    errors = quantisation_errors(net, x, (2, 3))
    assert errors.shape == (net.n_layers, 2) and np.all(errors >= 0)
    assert int(net.bits[0]) == 0 and int(net.layer_bits.sum()) == 0  # left unquantised

    def stored(widths: list[int]) -> int:
        net.enable_quantisation(spec, fractions, widths)
        size = stored_bits(integer_model_sizes(to_integer(net)))
        net.bits.zero_()
        net.layer_bits.zero_()
        return size

    uniform = stored([2] * net.n_layers)
    budget = (uniform + 20 + 7) // 8  # room for some 20 weights' extra bit, not all
    widths = choose_layer_bits(net, x, spec, fractions, budget)
    assert set(widths) == {2, 3}
    assert stored(widths) <= 8 * budget < stored([3] * net.n_layers)
    assert int(net.bits[0]) == 0  # still unquantised afterwards
    assert choose_layer_bits(net, x, spec, fractions, uniform // 8) == [2] * net.n_layers
    roomy = (stored([4] * net.n_layers) + 7) // 8
    wider = choose_layer_bits(net, x, spec, fractions, roomy, extra_bits=2)
    assert max(wider) == 4 and stored(wider) <= 8 * roomy
