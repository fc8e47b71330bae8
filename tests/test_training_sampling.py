"""AudioMAE's weighted sampler: weights by hand, per-epoch reproducibility, rare classes drawn more often."""
import datasets
import numpy as np
import pytest

from hf_audio_cr.training import AudiosetWeightedSampler, audioset_sample_weights

LABELS = [[1, 0], [1, 0], [1, 1]]


def test_weights_by_hand_from_arrays_and_datasets():
    common, rare = 1000 / (3 + 0.01), 1000 / (1 + 0.01)  # class counts 3 and 1
    expected = np.array([common, common, common + rare])
    assert np.allclose(audioset_sample_weights(LABELS), expected)
    table = datasets.Dataset.from_dict({"labels": [[float(v) for v in row] for row in LABELS], "video_id": ["a", "b", "c"]})
    assert np.allclose(audioset_sample_weights(table, batch_size=2), expected)  # read in chunks
    # load_audioset(streaming=False) stores MIDs and builds targets in a transform: weights come from the MIDs
    mids = datasets.Dataset.from_dict({"labels": [["/m/09x0r"], ["/m/09x0r"], ["/m/09x0r", "/m/07gql"]]})
    assert np.allclose(audioset_sample_weights(mids.with_transform(lambda b: {"labels": [[0.0]] * len(b["labels"])})), expected)
    with pytest.raises(ValueError, match="'labels' column"):
        audioset_sample_weights(table.remove_columns("labels"))


def test_sampler_epoch_length_seed_and_balance():
    labels = np.zeros((100, 2))
    labels[:95, 0] = 1  # 95 clips of a common class
    labels[95:, 1] = 1  # 5 clips of a rare one
    weights = audioset_sample_weights(labels)
    sampler = AudiosetWeightedSampler(weights, epoch_length=2000, seed=7)
    first = list(sampler)
    assert len(sampler) == len(first) == 2000
    assert list(sampler) == first  # same (seed, epoch) -> same draw on every process
    sampler.set_epoch(1)
    assert list(sampler) != first
    rare_share = np.isin(first, np.arange(95, 100)).mean()
    assert 0.4 < rare_share < 0.6  # balanced: each class ~half the draws although the rare one is 5% of clips
    assert len(AudiosetWeightedSampler(weights)) == 100  # default epoch: the set's size
    with pytest.raises(ValueError, match="not all zero"):
        AudiosetWeightedSampler(np.zeros(3))
