"""Bad input raises VidaugError (a ValueError) naming the argument, the value and what was expected."""

from __future__ import annotations

import pytest
import torch

import vidaug3d as va
from vidaug3d import functional as VF


def raises(arg: str):
    """The message starts with the argument's name, then the value received, then what was expected."""
    pattern = rf"^{arg}: got .*expected"
    return pytest.raises(va.VidaugError, match=pattern)


def test_error_type_is_a_value_error() -> None:
    assert issubclass(va.VidaugError, ValueError)


@pytest.mark.parametrize(
    ("video", "arg"),
    [
        (torch.rand(2, 3, 4), "video"),  # wrong rank
        (torch.rand(1, 1, 1, 4, 4, 1), "video"),
        ([[1.0]], "video"),  # not a tensor
        (torch.rand(0, 1, 4, 8, 8), "video"),  # empty batch
        (torch.rand(2, 1, 0, 8, 8), "video"),  # empty clip
        (torch.rand(2, 1, 4, 8, 8).to(torch.int32), "video"),  # dtype
        (torch.full((1, 1, 4, 8, 8), float("nan")), "video"),
        (torch.full((1, 1, 4, 8, 8), float("inf")), "video"),
        (torch.full((1, 1, 4, 8, 8), -float("inf")), "video"),
    ],
)
def test_bad_videos(video: object, arg: str) -> None:
    with raises(arg):
        va.presets.paper()(video, seed=0)  # type: ignore[arg-type]


def test_nan_message_says_nan() -> None:
    with pytest.raises(va.VidaugError, match="NaN"):
        va.GaussianNoise()(torch.full((1, 1, 2, 4, 4), float("nan")), seed=0)


def test_too_few_frames_names_the_transform() -> None:
    with pytest.raises(
        va.VidaugError, match=r"T = 1 frames.*at least 2 frames for TemporalShuffle, FrameReplace"
    ):
        va.presets.paper()(torch.rand(2, 1, 1, 8, 8), seed=0)
    va.presets.paper(temporal=False)(torch.rand(2, 1, 1, 8, 8), seed=0)  # one frame is fine without them


@pytest.mark.parametrize(
    ("make", "arg"),
    [
        (lambda: va.RandomHorizontalFlip(p=1.5), "p"),
        (lambda: va.RandomHorizontalFlip(p=-0.1), "p"),
        (lambda: va.TemporalReverse(p=float("nan")), "p"),
        (lambda: va.RandomErasing(p=2), "p"),
        (lambda: va.RandomAffine(degrees=(10, -10)), "degrees"),
        (lambda: va.RandomAffine(degrees=-5), "degrees"),
        (lambda: va.RandomAffine(scale=(1.2, 0.8)), "scale"),
        (lambda: va.RandomAffine(scale=(0.0, 1.0)), "scale"),
        (lambda: va.RandomAffine(translate=(0.1, 1.5)), "translate"),
        (lambda: va.RandomAffine(padding_mode="wrap"), "padding_mode"),
        (lambda: va.ColorJitter(brightness=(1.3, 0.7)), "brightness"),
        (lambda: va.ColorJitter(contrast=-0.1), "contrast"),
        (lambda: va.ColorJitter(vary="pixel"), "vary"),  # type: ignore[arg-type]
        (lambda: va.GaussianNoise(std=-0.1), "std"),
        (lambda: va.RandomErasing(scale=(0.1, 0.02)), "scale"),
        (lambda: va.RandomErasing(ratio=(0.0, 3.0)), "ratio"),
        (lambda: va.RandomErasing(value=float("nan")), "value"),
        (lambda: va.TemporalShuffle(max_frames=-1), "max_frames"),
        (lambda: va.FrameReplace(max_frames=2.5), "max_frames"),  # type: ignore[arg-type]
        (lambda: va.Compose([va.TemporalReverse(), "flip"]), r"transforms\[1\]"),  # type: ignore[list-item]
    ],
)
def test_bad_configuration(make, arg: str) -> None:
    with raises(arg):
        make()


def test_bad_call_arguments() -> None:
    aug = va.presets.paper()
    video = torch.rand(2, 1, 4, 8, 8)
    with raises("generator"):
        aug(video, generator=3)  # type: ignore[arg-type]
    with raises("generator/seed"):
        aug(video, generator=torch.Generator(), seed=1)
    with raises("seed"):
        aug(video, seed=-1)
    with raises("sample_ids"):
        aug(video, seed=0, sample_ids=[1, 2, 3])
    with raises("sample_ids"):
        aug(video, seed=0, sample_ids=torch.tensor([0.5, 1.0]))
    with raises("epoch"):
        aug(video, seed=0, epoch=-1)
    with raises("layout"):
        aug(video, layout="BCTXW")
    with raises("video"):
        aug(video, layout="CTHW")
    with raises("out_dtype"):
        aug(video, seed=0, out_dtype=torch.int32)


def test_mismatched_records() -> None:
    aug = va.presets.paper()
    video = torch.rand(2, 1, 4, 8, 8)
    _, rec = aug(video, seed=0, return_params=True)
    with raises("params"):
        aug(torch.rand(3, 1, 4, 8, 8), params=rec)  # another batch size
    with raises("params"):
        aug(torch.rand(2, 1, 4, 8, 10), params=rec)  # another frame size
    with raises("params"):
        va.presets.paper(temporal=False)(video, params=rec)  # another pipeline
    with raises("params"):
        aug(video, params=rec, seed=1)  # replay and a new draw at once
    with raises("record"):
        aug(video, params={"format": "something else"})


def test_mismatched_targets() -> None:
    aug = va.presets.paper()
    video = torch.rand(2, 1, 4, 8, 8)
    with raises(r"targets\['boxes'\]"):
        aug(video, seed=0, targets={"boxes": torch.rand(3, 1, 4)})  # batch
    with raises(r"targets\['boxes'\]"):
        aug(video, seed=0, targets={"boxes": torch.rand(2, 1, 5)})  # not xyxy
    with raises(r"targets\['boxes'\]"):
        aug(video, seed=0, targets={"boxes": torch.full((2, 1, 4), float("nan"))})
    with raises(r"targets\['masks'\]"):
        aug(video, seed=0, targets={"masks": torch.rand(2, 4, 8, 9)})
    with raises(r"targets\['frame_labels'\]"):
        aug(video, seed=0, targets={"frame_labels": torch.zeros(2, 5)})
    with raises("targets"):
        aug(video, seed=0, targets={"labels": torch.zeros(2)})


def test_kernel_argument_errors() -> None:
    v = torch.rand(2, 1, 4, 8, 8)
    with raises("frame_map"):
        VF.gather_frames(v, torch.zeros(3, 4, dtype=torch.long))
    with raises("matrix"):
        VF.warp(v, torch.eye(3).repeat(3, 1, 1))
    with raises("brightness"):
        VF.adjust_brightness(v, torch.ones(3))
    with raises("noise"):
        VF.add_noise(v, torch.zeros(2, 1, 4, 8, 9), torch.ones(2))
    with raises("boxes"):
        VF.erase(v, torch.zeros(2, 3, dtype=torch.long))


def test_inverse_of_non_invertible_pipeline() -> None:
    aug = va.presets.paper(temporal=False)
    video = torch.rand(2, 1, 4, 16, 16)
    out, rec = aug(video, seed=0, return_params=True)
    with pytest.raises(va.VidaugError, match="cannot be inverted"):
        aug.inverse(out, rec)
    assert aug.inverse(out, rec, strict=False).shape == video.shape


@pytest.mark.parametrize("threads", [1, 2])
def test_non_finite_clip_is_named(threads: int) -> None:
    # The CPU executor checks each clip in its own task; the message names the clip.
    video = torch.rand(4, 1, 4, 8, 8)
    video[2, 0, 1, 3, 3] = float("nan")
    torch.set_num_threads(threads)
    try:
        with pytest.raises(
            va.VidaugError, match=r"video: got 'a tensor containing NaN or inf \(in clip 2\)'"
        ):
            va.presets.paper()(video, seed=0)
        with pytest.raises(va.VidaugError, match=r"in clip 2"):
            va.TwoViews(va.presets.paper())(video, seed=0)
        video[2, 0, 1, 3, 3] = float("inf")
        with pytest.raises(va.VidaugError, match=r"NaN or inf \(in clip 2\)"):
            va.TemporalReverse()(video, seed=0)
        assert va.Compose([va.GaussianNoise()], check_values=False)(video, seed=0).shape == video.shape
    finally:
        torch.set_num_threads(1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
def test_huge_finite_values_are_accepted_and_non_finite_ones_refused(dtype: torch.dtype) -> None:
    # the check sums each clip first: values whose sum overflows are finite, and must still pass
    big = torch.finfo(dtype).max
    video = torch.full((2, 1, 2, 4, 4), big, dtype=dtype)
    video[1] = -big
    aug = va.Compose([va.TemporalReverse(p=1.0)], value_range=None)
    assert torch.equal(aug(video, seed=0), video.flip(2))
    for bad in (float("nan"), float("inf"), -float("inf")):
        video[1, 0, 1, 2, 3] = bad
        with pytest.raises(va.VidaugError, match=r"NaN or inf \(in clip 1\)"):
            aug(video, seed=0)


def test_values_a_rounding_outside_the_range_are_accepted() -> None:
    # e.g. a float video after a resize elsewhere: 1.0000001 is not refused, and clamping
    # transforms bring it back into the range
    video = torch.rand(2, 1, 4, 8, 8)
    video[0, 0, 0, 0, 0] = 1.0000001
    video[1, 0, 0, 0, 0] = -1e-7
    out = va.presets.paper()(video, seed=0)
    assert out.min() >= 0 and out.max() <= 1
    assert torch.equal(va.TemporalReverse(p=0.0)(video, seed=0), video)


def test_value_ranges_that_cannot_be_honoured() -> None:
    video = torch.rand(2, 1, 4, 8, 8)
    with raises("value_range"):
        va.Compose([va.ColorJitter(0.3)], value_range=(1.0, 0.0))
    with raises("value_range"):
        va.Compose([va.ColorJitter(0.3)])(video, seed=0, value_range="full")
    with raises("value_range"):
        va.TwoViews(va.ColorJitter(0.3))(video, seed=0, value_range=(1.0, 0.0))
    with raises("value_range"):  # uint8 values are in [0, 255] whatever is declared
        va.ColorJitter(0.3)((video * 255).to(torch.uint8), seed=0, value_range=(0.0, 1.0))
    with raises("value"):  # a fill outside the declared range
        va.RandomErasing(p=1.0, value=0.0)(video, seed=0, value_range=(0.5, 1.0))
