"""The downstream tasks ``load_downstream`` knows (a light module: the fine-tuning arguments name them in
``--help`` without importing ``datasets``)."""

DOWNSTREAM_TASKS = ("esc50", "speech_commands_v1", "speech_commands_v2", "voxceleb1", "audiofolder")
