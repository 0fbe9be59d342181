"""The README's snippets run as written: the Python examples, the HPO snippet (slow), and the own-graph commands and
the loading snippet on a small graph with the README's labels."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytest_plugins = ("encoder_fixtures",)  # enc_bert_dir

BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), flags=re.S)


def _block(marker: str) -> str:
    """Return the one Python block of the README that contains ``marker``."""
    (block,) = [block for block in BLOCKS if marker in block]
    return block


def test_python_example_and_presets(monkeypatch, capsys):
    """The comparison with TransE, then the paper's preset: each block on its own, as a file, prints its result."""
    exec(_block('("TransE", "basic", {})'), {})  # noqa: S102
    printed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in printed] == ["TransE", "vbkgc"]
    assert all(0 < float(line.split()[1]) <= 1 for line in printed)
    exec(_block("PAPER.pipeline_kwargs()"), {})  # noqa: S102
    (printed,) = capsys.readouterr().out.splitlines()
    assert printed.startswith("paper preset, test MRR: ") and 0 < float(printed.split()[-1]) <= 1


@pytest.mark.slow
def test_hpo_snippet(monkeypatch, capsys):
    """The HPO snippet (about 5 minutes on 2 CPU cores), from the repository root as its data path expects."""
    if not (ROOT.parent / "shared" / "data" / "wn9").is_dir():
        pytest.skip("the snippet reads ../shared/data/wn9")
    monkeypatch.chdir(ROOT)
    exec(_block("hpo_pipeline("), {})  # noqa: S102
    assert "'loss.margin'" in capsys.readouterr().out


#: a small graph with the labels the README's own-graph snippets use (Paris, capital_of)
CAPITALS = {
    "Paris": "France", "Berlin": "Germany", "Rome": "Italy", "Madrid": "Spain", "Lisbon": "Portugal",
    "Vienna": "Austria", "Bern": "Switzerland", "Oslo": "Norway", "Warsaw": "Poland", "Prague": "Czechia",
}  # fmt: skip
NEIGHBOURS = [
    ("France", "Germany"), ("France", "Italy"), ("France", "Spain"), ("France", "Switzerland"), ("Spain", "Portugal"),
    ("Germany", "Austria"), ("Germany", "Poland"), ("Germany", "Czechia"), ("Italy", "Austria"),
    ("Austria", "Czechia"), ("Poland", "Czechia"), ("Switzerland", "Italy"),
]  # fmt: skip


def _write_my_graph(directory: Path) -> None:
    """Write ``directory`` as the README describes it: train/valid/test.txt and entity2text.txt."""
    triples = [(city, "capital_of", country) for city, country in CAPITALS.items()]
    triples += [(a, "neighbour_of", b) for a, b in NEIGHBOURS] + [(b, "neighbour_of", a) for a, b in NEIGHBOURS]
    triples += [(city, "located_in", "Europe") for city in CAPITALS]
    splits = {"valid.txt": triples[7::10], "test.txt": triples[5::10]}
    splits["train.txt"] = [triple for triple in triples if all(triple not in split for split in splits.values())]
    directory.mkdir()
    for name, split in splits.items():
        (directory / name).write_text("".join("\t".join(triple) + "\n" for triple in split), encoding="utf-8")
    entities = sorted({entity for head, _, tail in triples for entity in (head, tail)})
    (directory / "entity2text.txt").write_text("".join(f"{e}\tthe place called {e}\n" for e in entities))


def _bash_lines(marker: str) -> list[list[str]]:
    """Return the commands of the README's bash block that contains ``marker``, split as the shell would."""
    import shlex

    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), flags=re.S)
    (block,) = [block for block in blocks if marker in block]
    return [shlex.split(line, comments=True) for line in block.splitlines() if line.strip()]


def test_own_graph_and_saving_snippets(tmp_path, monkeypatch, capsys, enc_bert_dir):
    """The own-graph commands (encode, train, predict, evaluate), then the Python loading snippet, as written.

    ``$MINILM`` is the README's MiniLM checkpoint; a tiny random BERT stands in for it here.
    """
    from click.testing import CliRunner

    from pykeen_vbkgc.cli import main

    monkeypatch.chdir(tmp_path)
    _write_my_graph(tmp_path / "my_graph")
    outputs = []
    for program, *arguments in _bash_lines("pykeen-vbkgc predict runs/mine"):
        assert program == "pykeen-vbkgc"
        arguments = [str(enc_bert_dir) if argument == "$MINILM" else argument for argument in arguments]
        result = CliRunner().invoke(main, arguments)
        assert result.exit_code == 0, (arguments, result.output)
        outputs.append(result.stdout)
    assert (tmp_path / "my_graph" / "features.safetensors").is_file()
    assert sorted(path.name for path in (tmp_path / "runs").iterdir()) == ["mine"]  # no mine.incomplete left
    assert (tmp_path / "runs" / "mine" / "vbkgc_model.json").is_file()
    predicted = [line.split()[0] for line in outputs[2].splitlines()[1:]]
    assert len(predicted) == 5 and "Paris" not in predicted
    assert outputs[3].splitlines()[-1].startswith("both")

    capsys.readouterr()
    exec(_block('load_run("runs/mine")'), namespace := {})  # noqa: S102
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split() == ["tail_label", "score"] and len(rows) == 5
    known = {
        tail for head, relation, tail in namespace["training"].triples if (head, relation) == ("Paris", "capital_of")
    }
    assert known == {"France"} and "France" not in {row.split()[0] for row in rows}
    # the printed rows are the best-scored of all the other entities
    ranked = namespace["predictions"].df.sort_values("score", ascending=False)
    assert [row.split()[0] for row in rows] == [label for label in ranked["tail_label"] if label not in known][:5]
