"""Batched CR views on real fbanks: mixup, SpecAugment, random erasing and their order (Sec. 3.3)."""
import pytest
import torch

from hf_audio_cr.training import make_views, mixup, random_erasing, spec_augment


@pytest.fixture(scope="module")
def fbanks(tiny_fbanks):
    return torch.cat([tiny_fbanks[name][:2] for name in sorted(tiny_fbanks)])  # 6 real crops [6, 128, 128]


def test_mixup_mixes_inputs_and_targets_with_the_same_mu(fbanks):
    torch.manual_seed(0)
    labels = torch.eye(len(fbanks))  # one-hot per clip: the mixed target reveals mu and the partner
    x, y = mixup(fbanks, labels, prob=1.0, alpha=10.0)
    for b in range(len(fbanks)):
        mu = y[b, b].item()
        partner = int(torch.nonzero(y[b]).flatten()[torch.nonzero(y[b]).flatten() != b][0])
        assert 0.0 < mu < 1.0 and partner != b
        assert y[b].sum().item() == pytest.approx(1.0)
        assert torch.allclose(x[b], mu * fbanks[b] + (1 - mu) * fbanks[partner], atol=1e-5)


def test_mixup_probability_and_beta(fbanks):
    torch.manual_seed(0)
    x, y = mixup(fbanks, torch.eye(len(fbanks)), prob=0.0)
    assert torch.equal(x, fbanks) and torch.equal(y, torch.eye(len(fbanks)))
    big = torch.eye(400)
    _, y = mixup(torch.zeros(400, 2, 2), big, prob=0.5, alpha=10.0)
    mus = y.diagonal()
    mixed = mus < 1.0
    assert 0.4 < mixed.float().mean().item() < 0.6  # p = 0.5
    assert 0.45 < mus[mixed].mean().item() < 0.55 and mus[mixed].std().item() < 0.15  # Beta(10, 10)
    x, none = mixup(fbanks, None, prob=1.0)  # unlabeled clips: inputs only
    assert none is None and not torch.equal(x, fbanks)


def test_spec_augment_masks_each_row_independently(fbanks):
    torch.manual_seed(0)
    views = fbanks.repeat(4, 1, 1)
    out = spec_augment(views, freq_mask=48, time_mask=64)
    masked = (out == 0) & (views != 0)
    time_cols = masked.all(dim=2)  # frames masked across every bin
    freq_rows = masked.all(dim=1)  # bins masked across every frame
    assert time_cols.sum(1).max() <= 64 and freq_rows.sum(1).max() <= 48
    assert time_cols.sum() > 0 and freq_rows.sum() > 0
    # masks are contiguous and differ between rows of the batch
    for row in list(time_cols) + list(freq_rows):
        idx = torch.nonzero(row).flatten()
        if len(idx):
            assert idx.max() - idx.min() + 1 == len(idx)
    assert len({tuple(torch.nonzero(r).flatten().tolist()) for r in time_cols}) > 1
    # masks longer than the clip are clipped to it (tiny configs have 128 frames, AudioMAE's mask is 192)
    assert spec_augment(fbanks, 0, 192).shape == fbanks.shape


def test_random_erasing_one_rectangle_within_scale_and_ratio(fbanks):
    torch.manual_seed(0)
    views = fbanks.repeat(5, 1, 1)
    out = random_erasing(views, prob=1.0)
    changed = out != views
    for row in changed:
        t, f = torch.nonzero(row.any(dim=1)).flatten(), torch.nonzero(row.any(dim=0)).flatten()
        h, w = t.max() - t.min() + 1, f.max() - f.min() + 1
        assert row[t.min() : t.max() + 1, f.min() : f.max() + 1].float().mean() > 0.99  # a filled rectangle
        assert 0.015 <= (h * w).item() / row.numel() <= 0.36
        assert 0.25 <= (h / w).item() <= 3.6
    assert torch.equal(random_erasing(views, prob=0.0), views)
    kept = (random_erasing(views, prob=0.25) != views).flatten(1).any(1).float().mean().item()
    assert 0.0 < kept < 0.6


def test_views_share_the_mixed_clip_and_differ_by_view_augmentation(fbanks):
    labels = torch.eye(len(fbanks))
    torch.manual_seed(0)
    plain, y = make_views(fbanks, labels, num_views=3, mixup_prob=1.0, freq_mask=0, time_mask=0, erase_prob=0.0)
    assert plain.shape == (3 * len(fbanks), 128, 128) and y.shape == labels.shape
    assert torch.equal(plain[: len(fbanks)], plain[len(fbanks) : 2 * len(fbanks)])  # one mixup for all views
    torch.manual_seed(0)
    views, y2 = make_views(fbanks, labels, num_views=3, mixup_prob=1.0, freq_mask=48, time_mask=64, erase_prob=1.0)
    assert torch.equal(y, y2)  # same seed, same mixup
    first, second = views[: len(fbanks)], views[len(fbanks) : 2 * len(fbanks)]
    assert not torch.equal(first, second)
    # everything a view did not mask or erase is the shared mixed clip
    untouched = (first != 0) & (second != 0) & (first == plain[: len(fbanks)])
    assert untouched.float().mean() > 0.3


def test_views_are_reproducible_under_a_seed(fbanks):
    labels = torch.eye(len(fbanks))
    torch.manual_seed(3)
    a, ya = make_views(fbanks, labels, num_views=2)
    torch.manual_seed(3)
    b, yb = make_views(fbanks, labels, num_views=2)
    assert torch.equal(a, b) and torch.equal(ya, yb)


def test_bad_view_input_is_a_clear_error(fbanks):
    with pytest.raises(ValueError, match="long_audio='truncate'"):
        make_views(fbanks[:, None], None, num_views=2)
    with pytest.raises(ValueError, match="num_views"):
        make_views(fbanks, None, num_views=0)


def test_raw_zero_fill_is_the_value_audiomae_writes_before_normalising():
    # AudioMAE pads (and SpecAugment-masks) the raw fbank with 0, then normalises: its padded rows show the value
    from safetensors.torch import load_file

    from hf_audio_cr import AudioMAEFeatureExtractor
    from hf_audio_cr.training.augment import raw_zero_fill_value

    reference = load_file("tests/fixtures/reference/audiomae_small_finetune_io.safetensors")
    padded = reference["fbank"][0, int(reference["fbank_frames_before_padding"][0]) :]
    fill = raw_zero_fill_value(AudioMAEFeatureExtractor())
    assert padded.numel() > 0 and torch.equal(padded, torch.full_like(padded, fill))  # 0.4670324 in float32
    # other statistics give their own raw zero; no normalisation: 0
    assert raw_zero_fill_value(AudioMAEFeatureExtractor(mean=-6.0, std=3.0)) == pytest.approx(1.0)
    assert raw_zero_fill_value(AudioMAEFeatureExtractor(do_normalize=False)) == 0.0
    with pytest.raises(ValueError, match="spec_augment_fill"):
        raw_zero_fill_value(object())


def test_spec_augment_writes_the_given_fill(fbanks):
    torch.manual_seed(0)
    out = spec_augment(fbanks, freq_mask=48, time_mask=64, mask_value=0.467)
    changed = out != fbanks
    assert changed.any() and torch.all(out[changed] == 0.467)
