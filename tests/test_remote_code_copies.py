"""Model folders are self-contained for remote code, so shared helpers are copied: the copies must not drift.

Every ``# Copied from hf_audio_cr.<module>.<name>`` comment in the package marks the definition that follows it
(a function, class or assignment, after any further comment lines) as a verbatim copy of ``<name>`` in
``<module>`` (a nested ``Class.method`` path works too); the scan below finds them all and compares sources.
"""
import ast
import re
import textwrap
from pathlib import Path

import hf_audio_cr

PACKAGE = Path(hf_audio_cr.__file__).resolve().parent
MARKER = re.compile(r"#\s*Copied from\s+(hf_audio_cr(?:\.\w+)+)")


def _definitions(body):
    """``name -> node`` for the functions, classes and simple assignments of a module or class body."""
    found = {}
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found[node.name] = node
        elif isinstance(node, ast.Assign):
            found.update({t.id: node for t in node.targets if isinstance(t, ast.Name)})
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            found[node.target.id] = node
    return found


def _source(path: Path, node) -> str:
    lines = path.read_text().splitlines()
    start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    return textwrap.dedent("\n".join(lines[start - 1 : node.end_lineno]))


def _resolve(dotted: str, package_root: Path):
    """(file, node) of ``dotted``: the longest prefix that is a module file, then names inside it."""
    parts = dotted.split(".")[1:]
    for split in range(len(parts) - 1, 0, -1):
        path = package_root.joinpath(*parts[:split]).with_suffix(".py")
        if path.is_file():
            node, body = None, ast.parse(path.read_text()).body
            for name in parts[split:]:
                node = _definitions(body).get(name)
                if node is None:
                    return path, None
                body = getattr(node, "body", [])
            return path, node
    return None, None


def copy_drift(package_root: Path) -> tuple[int, list[str]]:
    """How many ``# Copied from`` markers ``package_root`` holds, and a message for each copy that differs from
    its original (or whose original cannot be found)."""
    markers, problems = 0, []
    for path in sorted(package_root.rglob("*.py")):
        text = path.read_text()
        if "Copied from" not in text:
            continue
        tree = ast.parse(text)
        nodes = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef,
                                                                ast.Assign, ast.AnnAssign))]
        for lineno, line in enumerate(text.splitlines(), start=1):
            match = MARKER.search(line)
            if match is None:
                continue
            markers += 1
            where = f"{path.relative_to(package_root.parent)}:{lineno}"
            following = [n for n in nodes if min([n.lineno] + [d.lineno for d in getattr(n, "decorator_list", [])])
                         > lineno]
            if not following:
                problems.append(f"{where}: no definition follows the marker")
                continue
            copy = min(following, key=lambda n: n.lineno)
            original_path, original = _resolve(match.group(1), package_root)
            if original is None:
                problems.append(f"{where}: {match.group(1)} not found")
            elif _source(path, copy) != _source(original_path, original):
                problems.append(f"{where}: differs from {match.group(1)} ({original_path.name}:{original.lineno}); "
                                "edit the original and copy it again")
    return markers, problems


def test_every_copied_from_marker_in_the_package_matches_its_original():
    markers, problems = copy_drift(PACKAGE)
    assert markers >= 1  # the HEAR feature extractor's validate_waveforms at least
    assert problems == []


def test_the_scan_finds_every_drifted_copy_not_just_the_first(tmp_path):
    package = tmp_path / "hf_audio_cr"
    (package / "a").mkdir(parents=True)
    (package / "a" / "source.py").write_text(
        "LIMIT = 3\n\n\ndef check(x):\n    return x < LIMIT\n\n\nclass Box:\n    def size(self):\n        return 1\n")
    (package / "copies.py").write_text(
        "# Copied from hf_audio_cr.a.source.LIMIT\nLIMIT = 3\n\n\n"
        "# Copied from hf_audio_cr.a.source.check: self-contained for remote code\n"
        "# (a second comment line)\ndef check(x):\n    return x <= LIMIT\n\n\n"
        "class Other:\n    # Copied from hf_audio_cr.a.source.Box.size\n    def size(self):\n        return 2\n\n\n"
        "# Copied from hf_audio_cr.a.source.missing\ndef missing():\n    pass\n")
    markers, problems = copy_drift(package)
    assert markers == 4
    assert [p.split(": ")[1].split(" (")[0] for p in problems] == [
        "differs from hf_audio_cr.a.source.check", "differs from hf_audio_cr.a.source.Box.size",
        "hf_audio_cr.a.source.missing not found"]
    (package / "copies.py").write_text("# Copied from hf_audio_cr.a.source.check\ndef check(x):\n    return x < LIMIT\n")
    assert copy_drift(package) == (1, [])


def test_the_resample_hint_is_the_same_in_both_feature_extractors():
    from hf_audio_cr.models.cr_audiomae import feature_extraction_cr_audiomae as audiomae_fe
    from hf_audio_cr.models.hear import feature_extraction_hear as hear_fe

    assert hear_fe.RESAMPLE_HINT == audiomae_fe.RESAMPLE_HINT


def test_the_pipeline_file_is_the_same_in_both_model_folders():
    models = PACKAGE / "models"
    name = "pipeline_audio_classification.py"
    assert (models / "cr_audiomae" / name).read_bytes() == (models / "hear" / name).read_bytes()
