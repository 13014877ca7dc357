"""Stride-2 deconvolutions rewritten as convolutions give the same heatmaps, and in OpenVINO's int8
model they run as int8 convolutions rather than fp32 deconvolutions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from posetrack_cli.models.pose_mobilenetv2 import pose_mobilenetv2
from posetrack_cli.models.pose_resnet import fold_batchnorm, pose_resnet
from posetrack_cli.models.subpixel import SubpixelDeconv, rewritable, subpixel_deconvolutions


@pytest.mark.parametrize(("kernel", "padding", "output_padding"), [(4, 1, 0), (3, 1, 1), (2, 0, 0)])
@pytest.mark.parametrize("bias", [False, True])
def test_each_head_kernel_gives_the_deconvolutions_output(kernel: int, padding: int, output_padding: int,
                                                          bias: bool) -> None:
    torch.manual_seed(kernel)
    layer = nn.ConvTranspose2d(6, 5, kernel, stride=2, padding=padding, output_padding=output_padding,
                               bias=bias).double()
    x = torch.randn(2, 6, 5, 7, dtype=torch.double)
    expected = layer(x)
    assert expected.shape == (2, 5, 10, 14)
    torch.testing.assert_close(SubpixelDeconv(layer)(x), expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(SubpixelDeconv(layer, relu=True)(x), expected.relu(), rtol=0, atol=1e-12)
    then = nn.Conv2d(5, 3, 1).double()
    torch.testing.assert_close(SubpixelDeconv(layer, relu=True, then=then)(x), then(expected.relu()), rtol=0,
                               atol=1e-12)
    with pytest.raises(ValueError, match="1x1"):
        SubpixelDeconv(layer, then=nn.Conv2d(5, 3, 3).double())


def test_other_deconvolutions_are_left_as_they_are() -> None:
    assert not rewritable(nn.ConvTranspose2d(4, 4, 4, stride=2, padding=0))  # 2H + 2: not a doubling
    assert not rewritable(nn.ConvTranspose2d(4, 4, 3, stride=3))
    assert not rewritable(nn.ConvTranspose2d(4, 4, 4, stride=2, padding=1, groups=2))
    model = nn.Sequential(nn.ConvTranspose2d(4, 4, 3, stride=3), nn.ReLU())
    rewritten = subpixel_deconvolutions(model)
    assert isinstance(rewritten[0], nn.ConvTranspose2d) and isinstance(rewritten[1], nn.ReLU)
    with pytest.raises(ValueError, match="doubles its input"):
        SubpixelDeconv(model[0])


@pytest.mark.parametrize("kernel", [4, 3, 2])
def test_a_folded_pose_network_keeps_its_heatmaps_and_the_relu_moves_inside(kernel: int) -> None:
    torch.manual_seed(0)
    model = fold_batchnorm(pose_resnet(depth=18, deconv_kernel=kernel).eval())
    for m in model.deconv_layers.modules():  # the paper's N(0, 0.001) head would leave only the bias
        if isinstance(m, nn.ConvTranspose2d):
            nn.init.normal_(m.weight, std=0.05)
    nn.init.normal_(model.final_layer.weight, std=0.05)
    rewritten = subpixel_deconvolutions(model)
    kinds = [type(m) for m in rewritten.deconv_layers]
    assert kinds.count(SubpixelDeconv) == 3 and nn.ReLU not in kinds and nn.ConvTranspose2d not in kinds
    subpixels = [m for m in rewritten.deconv_layers if isinstance(m, SubpixelDeconv)]
    assert all(m.relu for m in subpixels)
    assert subpixels[-1].then is not None and isinstance(rewritten.final_layer, nn.Identity)
    x = torch.randn(2, 3, 64, 48)
    with torch.no_grad():
        expected, got = model(x), rewritten(x)
    assert float(expected.abs().max()) > 0.01
    torch.testing.assert_close(got, expected, rtol=0, atol=2e-5 * float(expected.abs().max()))
    assert any(isinstance(m, nn.ConvTranspose2d) for m in model.modules())  # the original is untouched


@pytest.mark.slow
def test_openvino_int8_runs_no_fp32_deconvolution() -> None:
    pytest.importorskip("openvino", reason="OpenVINO is not installed (pip install openvino nncf)")
    pytest.importorskip("nncf", reason="NNCF is not installed")
    import openvino as ov

    from posetrack_cli.models.checkpoints import InputNorm
    from posetrack_cli.models.crop_input import CropInput
    from posetrack_cli.runtime.convert import convert_to_openvino
    from posetrack_cli.runtime.quantize import quantize_int8

    torch.manual_seed(0)
    model = fold_batchnorm(CropInput(pose_mobilenetv2(deconv_channels=(32, 32, 32)), InputNorm("rgb")).eval())
    crops = np.random.default_rng(0).integers(0, 256, (8, 64, 48, 3), dtype=np.uint8)
    int8 = quantize_int8(convert_to_openvino(model, (48, 64)), crops)
    compiled = ov.Core().compile_model(int8, "CPU", {"INFERENCE_NUM_THREADS": 1, "PERF_COUNT": True})
    request = compiled.create_infer_request()
    request.infer([crops[:1]])
    ran = {(p.node_type, p.exec_type) for p in request.profiling_info if p.real_time.total_seconds() >= 0}
    assert not any(node == "ConvolutionBackpropData" for node, _ in ran)
    int8_convs = [kind for node, kind in ran if node == "Convolution" and "I8" in kind.upper()]
    assert int8_convs, f"no int8 convolution ran: {sorted(ran)}"
