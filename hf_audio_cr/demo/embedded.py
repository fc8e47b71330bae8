"""An embedded AudioSet-style multi-label set built from real recordings shipped by Debian packages.

Nothing is downloaded: the drum hits of ``hydrogen-data`` (GMRockKit), the spoken prompts of
``asterisk-core-sounds-en-wav`` and ``alsa-utils``, and a few ``sound-theme-freedesktop`` sounds are
mixed into 10 s scenes (1-4 sources, each heard 1-3 times at random offsets and gains, over low
background noise) and
written as local parquet files with AudioSet's schema (``video_id``, ``audio`` as 48 kHz FLAC,
``labels`` as MIDs, ``human_labels``), so the real AudioSet loader reads them back unchanged.

Each source recording belongs to exactly one split: scenes of the test split only contain
recordings the model never heard in training (byte-identical duplicates are collapsed first).

Where the recordings are is an argument (``SoundDirs``): by default the Debian install locations, or the
same layout under another root (``SoundDirs.debian(root)``, e.g. a folder made with ``dpkg -x``).
"""
from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SPLITS = ("train", "validation", "test")
# Share of each source group's recordings per split (a group with fewer than 3 recordings cannot
# be split without sharing a recording, so it goes to train only).
SPLIT_FRACTIONS = (0.6, 0.2, 0.2)
DEFAULT_NUM_SCENES = {"train": 240, "validation": 60, "test": 80}

_CLASS_CSV = Path(__file__).resolve().parent.parent / "data" / "resources" / "class_labels_indices.csv"

# AudioSet MIDs (class_labels_indices.csv) used below.
SPEECH, FEMALE_SPEECH = "/m/09x0r", "/m/02zsn"
DRUM, BASS_DRUM, SNARE_DRUM, RIMSHOT = "/m/026t6", "/m/0bm02", "/m/06rvn", "/m/03t3fj"
CYMBAL, HI_HAT, COWBELL, BELL, CLAPPING = "/m/01qbl", "/m/03qtq", "/m/0239kh", "/m/0395lw", "/m/0l15bq"
ALARM, TELEPHONE, RINGTONE, BUSY_SIGNAL, ALARM_CLOCK = (
    "/m/07pp_mv", "/m/07cx4", "/m/01hnzm", "/m/01z47d", "/m/046dlr")
TAMBOURINE, FINGER_SNAPPING, WOOD_BLOCK, MARACA, RATTLE_INSTRUMENT, DRUM_MACHINE = (
    "/m/07brj", "/m/025_jnm", "/m/01sm1g", "/m/0xzly", "/m/05r5wn", "/m/0cfdd")


@dataclass(frozen=True)
class SoundDirs:
    """The folders holding the source recordings, one per Debian package."""

    hydrogen: Path  # hydrogen-data: the GMRockKit drum kit
    asterisk: Path  # asterisk-core-sounds-en-wav: English prompts
    alsa: Path  # alsa-utils: speaker-test channel announcements
    freedesktop: Path  # sound-theme-freedesktop: stereo theme sounds

    @classmethod
    def debian(cls, root: str | Path = "/") -> SoundDirs:
        """Where the packages install their files, under ``root`` (``/`` for the installed packages)."""
        share = Path(root) / "usr" / "share"
        return cls(hydrogen=share / "hydrogen" / "data" / "drumkits" / "GMRockKit",
                   asterisk=share / "asterisk" / "sounds" / "en", alsa=share / "sounds" / "alsa",
                   freedesktop=share / "sounds" / "freedesktop" / "stereo")


@dataclass(frozen=True)
class SourceGroup:
    """Recordings of one kind: ``(directory, glob, labels)`` rules; the group is the unit split
    across train/validation/test. Labels are the leaf class plus the direct parents an AudioSet
    rater would also tick (a snare hit is tagged Snare drum and Drum)."""

    name: str
    package: str
    rules: tuple[tuple[Path, str, tuple[str, ...]], ...]
    max_event_seconds: float = 8.0
    exclude: frozenset = field(default_factory=frozenset)  # file names the globs match that are not this kind


# Tones, silence and the monkey recording in the asterisk set are not speech.
_ASTERISK_NOT_SPEECH = frozenset(
    {"beep.wav", "beeperr.wav", "ascending-2tone.wav", "descending-2tone.wav", "tt-monkeys.wav"})


def source_groups(dirs: SoundDirs | None = None) -> tuple[SourceGroup, ...]:
    """The labelled source groups, reading from ``dirs`` (default: the Debian install locations)."""
    dirs = SoundDirs.debian() if dirs is None else dirs
    kit, asterisk, alsa, freedesktop = dirs.hydrogen, dirs.asterisk, dirs.alsa, dirs.freedesktop

    def _kit(pattern: str, *labels: str):
        return (kit, pattern, labels)

    return (
        SourceGroup("kick", "hydrogen-data", (_kit("Kick-*.wav", BASS_DRUM, DRUM),)),
        SourceGroup("snare", "hydrogen-data", (
            _kit("Snare-*.wav", SNARE_DRUM, DRUM), _kit("SideStick-*.wav", SNARE_DRUM, DRUM),
            _kit("SnareRimshot-*.wav", RIMSHOT, SNARE_DRUM, DRUM))),
        SourceGroup("tom", "hydrogen-data", (_kit("Tom*.wav", DRUM),)),
        SourceGroup("hi-hat", "hydrogen-data", (_kit("Hat*.wav", HI_HAT, CYMBAL),)),
        # "Bell" in a rock kit is the ride cymbal's bell.
        SourceGroup("cymbal", "hydrogen-data", (
            _kit("Crash-*.wav", CYMBAL), _kit("*Ride-*.wav", CYMBAL), _kit("Splash-*.wav", CYMBAL),
            _kit("Bell-*.wav", CYMBAL))),
        SourceGroup("bell", "hydrogen-data", (
            _kit("Cowbell-*.wav", COWBELL, BELL), (freedesktop, "bell.oga", (BELL,)))),
        SourceGroup("clap", "hydrogen-data", (_kit("HandClap.wav", CLAPPING),)),
        SourceGroup("speech", "asterisk-core-sounds-en-wav", (
            (asterisk, "*.wav", (SPEECH, FEMALE_SPEECH)),
            (asterisk, "digits/*.wav", (SPEECH, FEMALE_SPEECH)),
            (asterisk, "letters/*.wav", (SPEECH, FEMALE_SPEECH)),
            (asterisk, "phonetic/*.wav", (SPEECH, FEMALE_SPEECH))), max_event_seconds=4.0,
            exclude=_ASTERISK_NOT_SPEECH),
        # alsa-utils' channel announcements (speaker-test); the gender is not asserted.
        SourceGroup("announcement", "alsa-utils", (
            (alsa, "Front_*.wav", (SPEECH,)), (alsa, "Rear_*.wav", (SPEECH,)),
            (alsa, "Side_*.wav", (SPEECH,)))),
        SourceGroup("alarm", "sound-theme-freedesktop", (
            (freedesktop, "alarm-clock-elapsed.oga", (ALARM_CLOCK, ALARM)),
            (freedesktop, "phone-incoming-call.oga", (RINGTONE, TELEPHONE, ALARM)),
            (freedesktop, "phone-outgoing-busy.oga", (BUSY_SIGNAL, TELEPHONE, ALARM)),
            (freedesktop, "phone-outgoing-calling.oga", (TELEPHONE, ALARM)))),
    )


# More classes for evaluations that need them (the CR study): hand percussion from other hydrogen-data kits
# and the TR-808 emulation kit as "Drum machine". Each group has >= 5 recordings, so every split gets one.
def extra_source_groups(dirs: SoundDirs | None = None) -> tuple[SourceGroup, ...]:
    """Six more classes from the other hydrogen-data kits (next to ``dirs.hydrogen``'s GMRockKit)."""
    kits = (SoundDirs.debian() if dirs is None else dirs).hydrogen.parent
    hand = kits / "Gimme A Hand 1.0"
    return (
        SourceGroup("tambourine", "hydrogen-data", (
            (hand, "Tambourine-*.wav", (TAMBOURINE,)), (kits / "ForzeeStereo", "Tambourine-*.wav", (TAMBOURINE,)))),
        SourceGroup("finger-snap", "hydrogen-data", ((hand, "Fingersnap-*.wav", (FINGER_SNAPPING,)),)),
        SourceGroup("wood-block", "hydrogen-data", (
            (hand, "WoodBlock-*.wav", (WOOD_BLOCK,)), (hand, "Clave-*.wav", (WOOD_BLOCK,)))),
        SourceGroup("maraca", "hydrogen-data", ((hand, "Maraca-*.wav", (MARACA, RATTLE_INSTRUMENT)),)),
        SourceGroup("hand-clap", "hydrogen-data", ((hand, "HandClap-*.wav", (CLAPPING,)),)),
        SourceGroup("drum-machine", "hydrogen-data", ((kits / "TR808EmulationKit", "*.flac", (DRUM_MACHINE,)),)),
    )


@dataclass(frozen=True)
class SourceRecording:
    path: Path
    group: str
    labels: tuple[str, ...]
    max_event_seconds: float


def audioset_class_names() -> dict[str, str]:
    """MID -> display name from the shipped ``class_labels_indices.csv``."""
    with open(_CLASS_CSV, newline="") as f:
        return {row["mid"]: row["display_name"] for row in csv.DictReader(f)}


def _check_packages_installed(groups: Sequence[SourceGroup]) -> None:
    missing = {}
    for group in groups:
        for directory, _, _ in group.rules:
            if not Path(directory).is_dir():
                missing.setdefault(group.package, str(directory))
    if missing:
        names = sorted(missing)
        raise FileNotFoundError(
            f"The embedded demo set needs real recordings from the Debian package(s) {', '.join(names)}, "
            f"which are not installed (no such folder: {', '.join(missing[n] for n in names)}). "
            f"Fix: run `make install` (or `sudo apt-get install {' '.join(names)}`), or point `sound_dirs` "
            "(the demo's --sounds_root) at a copy of the packages' files.")


def discover_sources(groups: Sequence[SourceGroup] | None = None,
                     sound_dirs: SoundDirs | None = None) -> list[SourceRecording]:
    """All usable recordings of ``groups`` (default: ``source_groups(sound_dirs)``), sorted, with
    byte-identical duplicates collapsed (the freedesktop theme ships several sounds twice under different names)."""
    groups = source_groups(sound_dirs) if groups is None else groups
    _check_packages_installed(groups)
    seen, sources = set(), []
    for group in groups:
        for directory, pattern, labels in group.rules:
            for path in sorted(directory.glob(pattern)):
                if path.name in group.exclude:
                    continue
                digest = hashlib.sha1(path.read_bytes()).hexdigest()
                if digest in seen:
                    continue
                seen.add(digest)
                sources.append(SourceRecording(path, group.name, tuple(labels), group.max_event_seconds))
    return sources


def assign_sources_to_splits(sources: Sequence[SourceRecording], seed: int = 0) -> dict[str, list[SourceRecording]]:
    """Give every recording to exactly one split, per group, shuffled with ``seed``."""
    by_group: dict[str, list[SourceRecording]] = {}
    for source in sources:
        by_group.setdefault(source.group, []).append(source)
    splits: dict[str, list[SourceRecording]] = {s: [] for s in SPLITS}
    for index, (name, members) in enumerate(sorted(by_group.items())):
        order = np.random.default_rng([seed, index]).permutation(len(members))
        members = [members[i] for i in order]
        if len(members) < len(SPLITS):
            splits["train"].extend(members)
            continue
        n_val = max(1, round(SPLIT_FRACTIONS[1] * len(members)))
        n_test = max(1, round(SPLIT_FRACTIONS[2] * len(members)))
        n_train = len(members) - n_val - n_test
        splits["train"].extend(members[:n_train])
        splits["validation"].extend(members[n_train:n_train + n_val])
        splits["test"].extend(members[n_train + n_val:])
    return splits


def _load_mono(path: Path, sampling_rate: int) -> np.ndarray:
    """A source recording at ``sampling_rate``, peak-normalised (the scene gains are relative to full scale)."""
    from ..data.audio_files import load_audio_file

    wave = load_audio_file(path, sampling_rate)
    peak = float(np.abs(wave).max())
    return wave / peak if peak > 0 else wave


def _pink_noise(rng: np.random.Generator, num_samples: int) -> np.ndarray:
    """1/f noise at unit RMS: white noise shaped by 1/sqrt(f) in the frequency domain."""
    spectrum = np.fft.rfft(rng.standard_normal(num_samples))
    freqs = np.arange(spectrum.shape[0], dtype=np.float64)
    freqs[0] = 1.0
    noise = np.fft.irfft(spectrum / np.sqrt(freqs), n=num_samples)
    return (noise / (noise.std() + 1e-12)).astype(np.float32)


def synthesize_scene(sources: Sequence[SourceRecording], rng: np.random.Generator, cache: dict[Path, np.ndarray],
                     sampling_rate: int = 48000, scene_seconds: float = 10.0, max_events: int = 4,
                     noise_dbfs: float = -50.0, max_repeats: int = 3) -> tuple[np.ndarray, list[str], list[str]]:
    """One scene: 1..max_events sources from distinct groups, each heard 1..max_repeats times (a drummer
    hits more than once) at random offsets and gains (-20..-3 dB peak), over pink noise at ``noise_dbfs``
    RMS. Returns (waveform, labels, source file names)."""
    num_samples = int(round(scene_seconds * sampling_rate))
    scene = _pink_noise(rng, num_samples) * np.float32(10 ** (noise_dbfs / 20))
    groups = sorted({s.group for s in sources})
    chosen_groups = rng.choice(groups, size=min(len(groups), int(rng.integers(1, max_events + 1))), replace=False)
    labels, used = [], []
    for group in chosen_groups:
        members = [s for s in sources if s.group == group]
        source = members[int(rng.integers(len(members)))]
        if source.path not in cache:
            cache[source.path] = _load_mono(source.path, sampling_rate)
        recording = cache[source.path]
        max_len = int(source.max_event_seconds * sampling_rate)
        for _ in range(int(rng.integers(1, max_repeats + 1))):
            event = recording
            if event.shape[0] > max_len:  # a random excerpt of a long prompt
                start = int(rng.integers(event.shape[0] - max_len + 1))
                event = event[start:start + max_len]
            event = event[:num_samples]
            offset = int(rng.integers(num_samples - event.shape[0] + 1))
            gain = np.float32(10 ** (rng.uniform(-20.0, -3.0) / 20))
            scene[offset:offset + event.shape[0]] += gain * event
        labels.extend(m for m in source.labels if m not in labels)
        used.append(str(source.path))
    peak = float(np.abs(scene).max())
    if peak > 0.99:  # keep the sum inside [-1, 1] instead of clipping
        scene *= np.float32(0.99 / peak)
    return scene, labels, used


def build_embedded_audioset(output_dir, num_scenes: dict[str, int] | None = None, seed: int = 0,
                            sampling_rate: int = 48000, scene_seconds: float = 10.0,
                            max_events: int = 4, progress: bool = False,
                            sound_dirs: SoundDirs | None = None, extended: bool = False) -> dict[str, str]:
    """Write ``{output_dir}/{split}.parquet`` for train/validation/test plus ``metadata.json``
    (which recordings went to which split, the classes, the seed) and return split -> parquet path.

    The parquet files have AudioSet's schema (``video_id``, ``audio`` FLAC, ``labels`` list of
    MIDs, ``human_labels``) so ``load_audioset(data_files=...)`` reads them like the Hub set.
    Same ``seed`` -> byte-identical files. ``sound_dirs``: where the source recordings are (default: the
    Debian install locations, ``SoundDirs.debian()``). ``extended=True`` adds six hand-percussion and
    drum-machine classes (``extra_source_groups``: more scored classes for a study); the default is the demo's set.
    """
    from tqdm.auto import tqdm

    from ..data.audioset import encode_flac, write_audioset_parquet

    num_scenes = dict(DEFAULT_NUM_SCENES if num_scenes is None else num_scenes)
    unknown = set(num_scenes) - set(SPLITS)
    if unknown:
        raise ValueError(f"num_scenes has unknown split(s) {sorted(unknown)}; use keys from {SPLITS}.")
    for split, count in num_scenes.items():
        if not isinstance(count, int) or count < 1:
            raise ValueError(f"num_scenes[{split!r}] must be a positive integer, got {count!r}.")
    if not 1 <= max_events:
        raise ValueError(f"max_events must be >= 1, got {max_events}.")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    names = audioset_class_names()
    groups = source_groups(sound_dirs) + (extra_source_groups(sound_dirs) if extended else ())
    assignment = assign_sources_to_splits(discover_sources(groups), seed=seed)
    paths, metadata = {}, {"seed": seed, "sampling_rate": sampling_rate, "scene_seconds": scene_seconds,
                           "extended": extended, "splits": {}}
    cache: dict[Path, np.ndarray] = {}
    for split_index, split in enumerate(SPLITS):
        if split not in num_scenes:
            continue
        rng = np.random.default_rng([seed, 1000 + split_index])
        clips = []
        used_sources = set()
        for i in tqdm(range(num_scenes[split]), desc=f"embedded {split} scenes", disable=not progress):
            wave, labels, used = synthesize_scene(assignment[split], rng, cache, sampling_rate, scene_seconds, max_events)
            video_id = f"emb{seed}-{split[:3]}-{i:05d}"
            # 16-bit FLAC bytes now, so a split never holds its waveforms all at once
            clips.append({"video_id": video_id, "labels": labels,
                          "audio": encode_flac((wave, sampling_rate), subtype="PCM_16", clip_id=video_id)})
            used_sources.update(used)
        path = output_dir / f"{split}.parquet"
        write_audioset_parquet(clips, path, sampling_rate=sampling_rate)
        paths[split] = str(path)
        metadata["splits"][split] = {
            "num_scenes": num_scenes[split],
            "source_recordings": sorted(str(s.path) for s in assignment[split]),
            "used_recordings": sorted(used_sources),
            "classes": sorted({names[m] for s in assignment[split] for m in s.labels}),
        }
    (output_dir / "metadata.json").write_text(json.dumps(metadata, indent=1))
    return paths
