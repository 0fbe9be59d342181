"""The README's Python snippets run as written (the ones that need no placeholder of the reader's own)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), flags=re.S)


def _block(marker: str) -> str:
    """Return the one Python block of the README that contains ``marker``."""
    (block,) = [block for block in BLOCKS if marker in block]
    return block


def test_python_example_and_presets(monkeypatch, capsys):
    """The comparison with TransE, then (in the same session, as a reader would) the paper's preset."""
    namespace: dict = {}
    exec(_block('("TransE", "basic", {})'), namespace)  # noqa: S102
    printed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in printed] == ["TransE", "vbkgc"]
    assert all(0 < float(line.split()[1]) <= 1 for line in printed)
    exec(_block("PAPER.pipeline_kwargs()"), namespace)  # noqa: S102


@pytest.mark.slow
def test_hpo_snippet(monkeypatch, capsys):
    """The HPO snippet (about 5 minutes on 2 CPU cores), from the repository root as its data path expects."""
    if not (ROOT.parent / "shared" / "data" / "wn9").is_dir():
        pytest.skip("the snippet reads ../shared/data/wn9")
    monkeypatch.chdir(ROOT)
    exec(_block("hpo_pipeline("), {})  # noqa: S102
    assert "'loss.margin'" in capsys.readouterr().out
