"""The card templates live at the top-level `model_cards/` (where people look for them) and ship inside the
package as `hf_audio_cr/model_cards/` (package data, so an installed wheel renders cards): the two must agree."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = sorted(p.name for p in (ROOT / "model_cards").glob("*.md"))


def test_both_template_folders_hold_the_same_cards():
    assert TEMPLATES == sorted(p.name for p in (ROOT / "hf_audio_cr" / "model_cards").glob("*.md"))
    assert {"cr_audiomae.md", "hear.md"} <= set(TEMPLATES)


@pytest.mark.parametrize("name", TEMPLATES)
def test_packaged_template_is_a_verbatim_copy(name):
    top, packaged = ROOT / "model_cards" / name, ROOT / "hf_audio_cr" / "model_cards" / name
    assert packaged.read_text() == top.read_text(), (
        f"{packaged} differs from {top}: edit model_cards/{name} and copy it to hf_audio_cr/model_cards/"
    )
