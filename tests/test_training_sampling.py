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


# AudioSet ontology facts used below (hf_audio_cr/data/resources/ontology.json):
# Male speech -> Speech -> Human voice -> Human sounds; Guitar -> Plucked string instrument -> Musical instrument
# -> Music. Speech, Guitar and the string/instrument/Music nodes are standard classes; Human voice and Human sounds
# are two of the 29 ancestors the 556-label set adds.
MALE, SPEECH, GUITAR = "/m/05zppz", "/m/09x0r", "/m/0342h"
CLIPS = [[MALE], [SPEECH], [GUITAR], [GUITAR, SPEECH]]


def w(count):
    return 1000 / (count + 0.01)


def test_weights_count_labels_with_their_ancestors_as_the_fork_does():
    table = datasets.Dataset.from_dict({"labels": CLIPS})
    # AudioMAE: own labels only (male 1, speech 2, guitar 2)
    assert np.allclose(audioset_sample_weights(table), [w(1), w(2), w(2), 2 * w(2)])
    # the fork: + ancestors in the 556 set. Counts: male 1; speech, human voice, human sounds 3;
    # guitar, plucked string, musical instrument, music 2
    with_parents = [w(1) + 3 * w(3), 3 * w(3), 4 * w(2), 4 * w(2) + 3 * w(3)]
    assert np.allclose(audioset_sample_weights(table, with_ancestors=True), with_parents)
    # in the 527 set Human voice / Human sounds do not exist: speech's count 3 stays, its two parents drop out
    assert np.allclose(audioset_sample_weights(table, with_ancestors=True, label_set="527"),
                       [w(1) + w(3), w(3), 4 * w(2), 4 * w(2) + w(3)])
    # multi-hot 556 targets as the data loader builds them (added ancestors on, standard ones off): same weights
    from hf_audio_cr.data.audioset import AudioSetTargets

    targets = AudioSetTargets("556")
    multi_hot = np.stack([targets.encode(mids)[0] for mids in CLIPS])
    assert multi_hot[0].sum() == 3  # male speech, human voice, human sounds (Speech's standard column stays off)
    assert np.allclose(audioset_sample_weights(multi_hot, with_ancestors=True), with_parents)
    with pytest.raises(ValueError, match="with_ancestors needs the clips' MIDs"):
        audioset_sample_weights(LABELS, with_ancestors=True)


def test_sampler_without_replacement_draws_distinct_clips():
    weights = np.array([1.0, 0.0, 5.0, 1.0, 2.0])
    sampler = AudiosetWeightedSampler(weights, epoch_length=4, seed=3, replacement=False)
    first = list(sampler)
    assert sorted(first) == [0, 2, 3, 4] and list(sampler) == first  # each non-zero clip once, reproducible
    many = AudiosetWeightedSampler(np.r_[np.full(90, 1.0), np.full(10, 9.0)], epoch_length=50, replacement=False)
    drawn = list(many)
    assert len(set(drawn)) == 50 and np.isin(drawn, np.arange(90, 100)).sum() >= 8  # heavy clips come first
    with pytest.raises(ValueError, match="without replacement from 4 clips"):
        AudiosetWeightedSampler(weights, epoch_length=5, replacement=False)


def test_as2m_config_reproduces_the_fork_and_audiomae_sampler():
    # parsed the way scripts/train_cr_audiomae.py reads it (unknown keys are refused there)
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_cr_audiomae", "scripts/train_cr_audiomae.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    _, data, args = script.parse_args(["configs/cr_audiomae/as2m_cr.yaml", "--output_dir", "unused", "--use_cpu", "true"])
    assert args.weighted_sampling and args.epoch_length == 200_000
    assert args.weighted_sampling_replacement is False and args.weighted_sampling_ancestors is True
    assert args.sampling_label_set == data.label_set == "556"
