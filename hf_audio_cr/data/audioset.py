"""AudioSet with ``datasets``: the 527 / 556 / 557 label sets and a streaming loader.

Label sets (CR-AudioMAE, Sec. "Label Set"): evaluation uses the standard 527 classes; training adds the
intermediate ontology nodes on the paths from the roots to those classes. The ontology has 30 such nodes; the
paper's 556-label set has 29 of them -- it leaves out ``/m/0hg7b`` "Microphone". ``"556"`` (the default) is the
paper's set, ``"557"`` adds Microphone back. In every set the first 527 columns are the standard classes in the
order of ``class_labels_indices.csv``; the added nodes follow in ontology order.

Targets: a clip's training target switches on its own labels and every added ancestor of them; the 527
standard columns are never touched by the ancestor expansion, so ``labels[:527]`` is exactly the clip's original
annotation and evaluation reads those columns.
"""
from __future__ import annotations

import csv
import functools
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..paths import check_local_or_hub
from .quality import safe_decode

logger = logging.getLogger(__name__)

RESOURCES = Path(__file__).parent / "resources"
AUDIOSET_HUB_ID = "agkphysics/AudioSet"
# The repository switched from tar shards + loading script to parquet (``data/{bal_train,eval,unbal_train}``);
# pin the parquet layout. TODO(lead): replace "main" by the full commit sha of that layout -- it could not be
# resolved offline; the loader checks the schema and fails with a clear message if the layout changes again.
AUDIOSET_REVISION = "main"
AUDIOSET_SAMPLING_RATE = 16000
NUM_STANDARD_CLASSES = 527
PAPER_OMITTED_ANCESTORS = ("/m/0hg7b",)  # "Microphone": in the ontology's 30 ancestors, not in the paper's 556
AUDIOSET_COLUMNS = ("video_id", "audio", "labels")
_AUDIO_EXTENSIONS = (".flac", ".wav", ".ogg", ".mp3", ".m4a", ".opus", ".webm")


@functools.cache
def audioset_ontology() -> dict:
    """``{mid: node}`` for the 632 nodes of AudioSet's ``ontology.json`` (CC BY-SA 4.0, Google)."""
    with open(RESOURCES / "ontology.json", encoding="utf-8") as f:
        return {node["id"]: node for node in json.load(f)}


@functools.cache
def _standard_classes() -> tuple:
    with open(RESOURCES / "class_labels_indices.csv", encoding="utf-8", newline="") as f:
        rows = sorted(csv.DictReader(f), key=lambda row: int(row["index"]))
    return tuple((row["mid"], row["display_name"]) for row in rows)


@functools.cache
def _parents() -> dict:
    parents: dict = {}
    for mid, node in audioset_ontology().items():
        for child in node["child_ids"]:
            parents.setdefault(child, []).append(mid)
    return parents


@functools.cache
def audioset_ancestors(mid: str) -> frozenset:
    """Every ontology node above ``mid`` (the ontology is a DAG: some nodes have several parents)."""
    found = set()
    for parent in _parents().get(mid, ()):
        found.add(parent)
        found |= audioset_ancestors(parent)
    return frozenset(found)


@functools.cache
def _label_set(name: str) -> tuple:
    standard = [mid for mid, _ in _standard_classes()]
    if name == "527":
        return tuple(standard)
    if name not in ("556", "557"):
        raise ValueError(f"audioset_label_set(name={name!r}): choose '527', '556' (paper default) or '557'.")
    standard_set = set(standard)
    added = set().union(*(audioset_ancestors(mid) for mid in standard)) - standard_set
    if name == "556":
        added -= set(PAPER_OMITTED_ANCESTORS)
    in_ontology_order = [mid for mid in audioset_ontology() if mid in added]
    return tuple(standard + in_ontology_order)


def audioset_label_set(name: str = "556") -> list:
    """MIDs of a label set: ``"527"`` (standard), ``"556"`` (paper: 527 + 29 ancestors), ``"557"`` (all 30)."""
    return list(_label_set(str(name)))


def audioset_id2label(name: str = "556") -> dict:
    """``{index: display name}`` for a label set (ontology names), ready for a model config's ``id2label``."""
    ontology = audioset_ontology()
    return {i: ontology[mid]["name"] for i, mid in enumerate(_label_set(str(name)))}


class AudioSetTargets:
    """Turns a clip's list of MIDs into its multi-hot target over a label set.

    Args:
        label_set: ``"527"``, ``"556"`` or ``"557"``.
        expand_ancestors: also switch on the added (non-standard) ancestors of each label -- the training
            target of the paper. Standard columns always hold the original labels only.
    """

    def __init__(self, label_set: str = "556", expand_ancestors: bool = True):
        self.label_set = str(label_set)
        self.mids = _label_set(self.label_set)
        self.index = {mid: i for i, mid in enumerate(self.mids)}
        self.expand_ancestors = expand_ancestors
        self._columns: dict = {}

    def __len__(self):
        return len(self.mids)

    def columns(self, mid: str) -> tuple:
        """Column indices a MID switches on (empty when the MID is neither in the set nor in the ontology)."""
        if mid not in self._columns:
            own = [self.index[mid]] if mid in self.index else []
            added = []
            if self.expand_ancestors:
                added = [self.index[a] for a in audioset_ancestors(mid) if self.index.get(a, -1) >= NUM_STANDARD_CLASSES]
            self._columns[mid] = tuple(sorted(set(own + added)))
        return self._columns[mid]

    def encode(self, mids: Iterable[str]) -> tuple:
        """-> (float32 multi-hot ``[len(label_set)]``, list of MIDs that are not in the label set)."""
        target = np.zeros(len(self.mids), dtype=np.float32)
        unknown = []
        for mid in mids or ():
            if mid not in self.index:
                unknown.append(mid)
            target[list(self.columns(mid))] = 1.0
        return target, unknown


class _PrepareAudioSetRow:
    """Row function shared by the streaming and map-style paths: decode safely, build the target."""

    def __init__(self, targets: AudioSetTargets, sampling_rate: int):
        from datasets import Audio

        self.targets = targets
        self.audio = Audio(sampling_rate=sampling_rate)

    def __call__(self, row: dict) -> dict:
        row = dict(row)
        mids = list(row.get("labels") or [])
        target, unknown = self.targets.encode(mids)
        row["label_mids"] = mids
        row["labels"] = target.tolist()
        row["unknown_labels"] = unknown
        row["audio"] = safe_decode(row["audio"], self.audio, clip_id=row.get("video_id"))
        return row

    def batch(self, batch: dict) -> dict:
        rows = [self({key: values[i] for key, values in batch.items()}) for i in range(len(batch["audio"]))]
        return {key: [row[key] for row in rows] for key in rows[0]} if rows else batch


def _read_segments_csv(csv_path: Path, audio_dir: Path) -> dict:
    """Original AudioSet layout: ``YTID, start_seconds, end_seconds, positive_labels`` + a folder of clips
    named ``<YTID>.*``, ``Y<YTID>.*`` or ``<YTID>_<start>[...]``; clips that are missing are counted."""
    by_stem = {}
    for root, _, files in os.walk(audio_dir):
        for file in files:
            if file.lower().endswith(_AUDIO_EXTENSIONS):
                by_stem.setdefault(Path(file).stem, os.path.join(root, file))
    ontology = audioset_ontology()
    columns = {"video_id": [], "audio": [], "labels": [], "human_labels": []}
    missing = []
    with open(csv_path, encoding="utf-8", newline="") as f:
        lines = (line for line in f if line.strip() and not line.lstrip().startswith("#"))
        for record in csv.reader(lines, skipinitialspace=True):
            if len(record) < 4:
                raise ValueError(f"{csv_path}: expected 'YTID, start_seconds, end_seconds, positive_labels', got {record}")
            ytid, start = record[0].strip(), float(record[1])
            candidates = (ytid, "Y" + ytid, f"{ytid}_{start:.3f}", f"{ytid}_{int(start)}", f"{ytid}_{int(start * 1000)}")
            path = next((by_stem[c] for c in candidates if c in by_stem), None)
            if path is None:
                missing.append(ytid)
                continue
            mids = [mid.strip() for mid in record[3].split(",") if mid.strip()]
            columns["video_id"].append(ytid)
            columns["audio"].append(path)
            columns["labels"].append(mids)
            columns["human_labels"].append([ontology[m]["name"] if m in ontology else m for m in mids])
    if missing:
        logger.warning(
            "%s: %d of %d clips have no file in %s (first: %s); they are left out.",
            csv_path, len(missing), len(missing) + len(columns["video_id"]), audio_dir, missing[:5],
        )
    if not columns["video_id"]:
        raise FileNotFoundError(f"{csv_path}: none of its clips was found in {audio_dir} (named <YTID>.flac etc.).")
    return columns


def _load_raw(path, name, split, streaming, data_files, revision, audio_dir, cache_dir):
    import datasets

    path = os.fspath(path)
    if path.endswith(".csv") and data_files is not None:
        raise ValueError(
            f"load_audioset({path!r}, data_files=...): give either a segments CSV or parquet data_files, not both."
        )
    if path.endswith(".csv"):
        columns = _read_segments_csv(Path(path), Path(audio_dir) if audio_dir else Path(path).parent)
        features = datasets.Features(
            video_id=datasets.Value("string"),
            audio=datasets.Audio(decode=False),
            labels=datasets.List(datasets.Value("string")),
            human_labels=datasets.List(datasets.Value("string")),
        )
        ds = datasets.Dataset.from_dict(columns, features=features)
        return ds.to_iterable_dataset(num_shards=min(len(ds), 64)) if streaming else ds
    if data_files is not None or os.path.isfile(path):
        files = data_files if data_files is not None else path
        if not isinstance(files, dict):
            files = {split: files}
        return datasets.load_dataset("parquet", data_files=files, split=split, streaming=streaming, cache_dir=cache_dir)
    if os.path.isdir(path):
        # A local copy of the Hub repo (README with configs) honours `name`; a plain folder is one split.
        has_configs = os.path.isfile(os.path.join(path, "README.md"))
        return datasets.load_dataset(
            path, name=name if has_configs else None, split=split, streaming=streaming, cache_dir=cache_dir
        )
    path = check_local_or_hub(path, "dataset", "Pass parquet files / a local copy of the set, or a Hub dataset id.")
    return datasets.load_dataset(path, name=name, split=split, streaming=streaming, revision=revision, cache_dir=cache_dir)


def load_audioset(
    path: str | os.PathLike = AUDIOSET_HUB_ID,
    name: str = "balanced",
    split: str = "train",
    streaming: bool = True,
    label_set: str = "556",
    data_files=None,
    revision: str | None = AUDIOSET_REVISION,
    expand_ancestors: bool = True,
    sampling_rate: int = AUDIOSET_SAMPLING_RATE,
    audio_dir: str | os.PathLike | None = None,
    shuffle_buffer_size: int | None = None,
    seed: int = 0,
    rank: int | None = None,
    world_size: int | None = None,
    reshard: bool = False,
    quality=None,
    cache_dir: str | None = None,
):
    """Load AudioSet as a ``datasets`` (Iterable)Dataset ready for :class:`AudioClassificationCollator`.

    Sources: the Hub repo (default ``agkphysics/AudioSet``, configs ``balanced`` -- AS-20k, splits
    ``train``/``test`` -- and ``unbalanced`` -- AS-2M), local parquet files in its schema (``data_files`` or a
    path to a file / folder), or the original CSV layout (``path="balanced_train_segments.csv"`` plus
    ``audio_dir``).

    Rows: ``video_id``; ``audio`` -- decoded by ``datasets`` (``Audio(sampling_rate=16000)``: a torchcodec
    ``AudioDecoder`` that resamples while decoding; ``row["audio"]["array"]``/``["sampling_rate"]`` work), or an
    :class:`~hf_audio_cr.data.quality.UnreadableAudio` marker for a file that cannot be opened, so one corrupt
    clip never ends an epoch; ``labels`` -- float multi-hot list over the label set; ``label_mids`` -- the
    original MIDs; ``unknown_labels`` -- MIDs outside the label set (the quality policy counts them).

    Multi-process training: under ``Trainer`` leave ``rank``/``world_size`` unset and pass
    ``accelerator_config={"dispatch_batches": False}``: accelerate then gives each process its own shards of
    the streaming dataset and each process decodes only its clips. With the default (``True`` for iterable
    datasets) the main process reads and decodes every batch for all processes and sends slices to them, so
    one CPU feeds all GPUs. Outside accelerate, pass ``rank``/``world_size`` (``split_dataset_by_node``).
    ``reshard=True`` splits parquet files into row-group shards so that shards >= processes x workers.

    ``quality`` (an :class:`~hf_audio_cr.data.quality.AudioQualityPolicy`, streaming only): check every clip in
    the stream (decoding it in the DataLoader workers) and drop rejected ones before batching, so training
    batches stay full; ``audio`` then arrives as a checked ``{"array", "sampling_rate"}`` dict.
    """
    import datasets

    raw = _load_raw(path, name, split, streaming, data_files, revision, audio_dir, cache_dir)
    columns = raw.column_names if raw.column_names is not None else list((raw.features or {}).keys())
    missing = [c for c in AUDIOSET_COLUMNS if columns and c not in columns]
    if missing:
        raise ValueError(
            f"load_audioset({os.fspath(path)!r}, revision={revision!r}): columns {missing} are missing (found "
            f"{columns}). Expected AudioSet's parquet schema video_id / audio / labels (list of MIDs) / human_labels."
        )
    raw = raw.cast_column("audio", datasets.Audio(sampling_rate=sampling_rate, decode=False))
    prepare = _PrepareAudioSetRow(AudioSetTargets(label_set, expand_ancestors), sampling_rate)
    if not streaming:
        if quality is not None:
            raise ValueError(
                "load_audioset(streaming=False, quality=...): filtering a map-style dataset would decode it all up "
                "front; pass the policy to AudioClassificationCollator(quality=...) instead."
            )
        return raw.with_transform(prepare.batch)
    if reshard:
        raw = raw.reshard()
    if world_size is not None and world_size > 1:
        from datasets.distributed import split_dataset_by_node

        raw = split_dataset_by_node(raw, rank=rank or 0, world_size=world_size)
    if shuffle_buffer_size:
        # Shuffle the undecoded rows (bytes only), before decoders are created.
        raw = raw.shuffle(seed=seed, buffer_size=shuffle_buffer_size)
    prepared = raw.map(prepare)
    return quality.filter_dataset(prepared) if quality is not None else prepared


def load_audioset_labels(
    path: str | os.PathLike = AUDIOSET_HUB_ID,
    name: str = "balanced",
    split: str = "train",
    data_files=None,
    revision: str | None = AUDIOSET_REVISION,
    cache_dir: str | None = None,
):
    """The ``labels`` column (lists of MIDs) of an AudioSet parquet set as a stream: the parquet reader loads that
    column only, so no audio is read or decoded (AS-2M's labels are a few hundred MB of a ~2 TB set). For the
    class counts of a weighted stream (:func:`hf_audio_cr.training.sampling.stream_class_weights`); rows come
    in the order of ``load_audioset(..., streaming=True)`` without a shuffle buffer."""
    import datasets

    path = os.fspath(path)
    if path.endswith(".csv"):
        raise ValueError(
            f"load_audioset_labels({path!r}): a segments CSV is not a parquet stream; write it as parquet "
            "(write_audioset_parquet) or load it with streaming=False for the map-style weighted sampler."
        )
    if data_files is not None or os.path.isfile(path):
        files = data_files if data_files is not None else path
        files = files if isinstance(files, dict) else {split: files}
        return datasets.load_dataset(
            "parquet", data_files=files, split=split, streaming=True, columns=["labels"], cache_dir=cache_dir
        )
    if not os.path.isdir(path):
        path = check_local_or_hub(path, "dataset", "Pass parquet files / a local copy of the set, or a Hub dataset id.")
    has_configs = not os.path.isdir(path) or os.path.isfile(os.path.join(path, "README.md"))
    return datasets.load_dataset(
        path, name=name if has_configs else None, split=split, streaming=True, columns=["labels"],
        revision=None if os.path.isdir(path) else revision, cache_dir=cache_dir,
    )


def encode_flac(audio, sampling_rate: int | None = None, subtype: str = "PCM_16", clip_id: str = "<clip>") -> bytes:
    """One clip as FLAC bytes: ``(waveform, rate)`` / ``{"array", "sampling_rate"}`` is resampled to
    ``sampling_rate`` (``None`` keeps its own rate) and encoded with soundfile; bytes or a path are stored as
    they are (so corrupt files can be written on purpose)."""
    import io

    import soundfile as sf
    import torch
    import torchaudio

    if isinstance(audio, (str, os.PathLike)):
        with open(audio, "rb") as f:
            return f.read()
    if isinstance(audio, (bytes, bytearray)):
        return bytes(audio)
    if isinstance(audio, dict):
        audio = (audio["array"], audio["sampling_rate"])
    wave, rate = np.asarray(audio[0], dtype=np.float32), int(audio[1])
    if not np.isfinite(wave).all():  # soundfile would fail with a bare AssertionError
        raise ValueError(
            f"write_audioset_parquet: clip {clip_id!r} has {int((~np.isfinite(wave)).sum())} NaN/inf "
            "samples, which FLAC cannot store; clean the waveform (e.g. np.nan_to_num) or leave the clip out."
        )
    sampling_rate = int(sampling_rate or rate)
    if rate != sampling_rate and wave.size:
        wave = torchaudio.functional.resample(torch.from_numpy(wave.T.copy()), rate, sampling_rate).numpy().T
    buffer = io.BytesIO()
    sf.write(buffer, wave, sampling_rate, format="FLAC", subtype=subtype)
    return buffer.getvalue()


def write_audio_parquet(columns: dict, features, path: str | os.PathLike, row_group_size: int = 64) -> Path:
    """Write ``columns`` (``{name: list}``, ``audio`` holding ``{"bytes", "path"}`` dicts) as a parquet file whose
    schema note types every column by ``features`` (a ``datasets.Features``), so ``datasets.load_dataset`` reads
    ``audio`` back as an ``Audio`` feature and labels as ``ClassLabel``, like the Hub's files."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    # encode_batch turns ClassLabel names into ids and checks every value against its feature.
    table = pa.Table.from_pydict(features.encode_batch(columns), schema=features.arrow_schema)
    table = table.replace_schema_metadata({"huggingface": json.dumps({"info": {"features": features.to_dict()}})})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


def write_audioset_parquet(
    clips: Iterable[dict],
    path: str | os.PathLike,
    sampling_rate: int = 48000,
    subtype: str = "PCM_24",
    row_group_size: int = 64,
) -> Path:
    """Write clips as a parquet file in AudioSet's Hub schema (FLAC bytes, 48 kHz 24-bit like the originals).

    Each clip is ``{"video_id", "labels": [MIDs], "audio": (waveform, rate) | {"array", "sampling_rate"} |
    bytes | path}``; a waveform is resampled to ``sampling_rate`` and FLAC-encoded with soundfile, given bytes
    are stored as they are (so corrupt files can be written on purpose). Small row groups give
    ``load_audioset(reshard=True)`` several shards to spread over workers.
    """
    import datasets

    ontology = audioset_ontology()
    records = {"video_id": [], "audio": [], "labels": [], "human_labels": []}
    for clip in clips:
        mids = list(clip.get("labels", []))
        records["video_id"].append(str(clip["video_id"]))
        audio = encode_flac(clip["audio"], sampling_rate, subtype, clip_id=str(clip["video_id"]))
        records["audio"].append({"bytes": audio, "path": f"{clip['video_id']}.flac"})
        records["labels"].append(mids)
        records["human_labels"].append([ontology[m]["name"] if m in ontology else m for m in mids])
    string_list = datasets.List(datasets.Value("string"))
    features = datasets.Features(
        video_id=datasets.Value("string"), audio=datasets.Audio(), labels=string_list, human_labels=string_list
    )
    return write_audio_parquet(records, features, path, row_group_size=row_group_size)
