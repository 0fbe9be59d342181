"""Our components resolve by name in fresh interpreters, with and without ``import pykeen_vbkgc``."""

import subprocess
import sys
import textwrap

import pytest

LOOKUPS = textwrap.dedent(
    """
    from pykeen.models import model_resolver
    from pykeen.sampling import negative_sampler_resolver
    from pykeen.losses import loss_resolver
    from pykeen.nn.modules import interaction_resolver
    from pykeen.datasets import dataset_resolver
    print(model_resolver.lookup("vbkgc").__name__)
    print(negative_sampler_resolver.lookup("twins").__name__)
    print(loss_resolver.lookup("meanmarginranking").__name__)
    print(loss_resolver.lookup("preset").__name__)
    print(interaction_resolver.lookup("vbkgc").__name__)
    print(dataset_resolver.lookup("wn9").__name__)
    """
)
EXPECTED = ["VBKGC", "TwinsNegativeSampler", "MeanMarginRankingLoss", "PresetLoss", "VBKGCInteraction", "WN9"]


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    "first_import",
    [
        "import pykeen_vbkgc",
        # without importing our package: the pykeen.datasets entry point imports it
        "from pykeen.pipeline import pipeline",
        "import pykeen.models",
        "from pykeen.hpo import hpo_pipeline",
        # pykeen.nn imports pykeen.datasets (and so our package) before it has the resolvers that pykeen.models needs
        "import pykeen.nn",
        "from pykeen.nn.init import xavier_uniform_",
    ],
)
def test_components_resolve_in_a_fresh_interpreter(first_import):
    result = run(first_import + "\n" + LOOKUPS)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == EXPECTED
    assert "could not load" not in result.stderr


@pytest.mark.parametrize(
    ("first_import", "name"),
    [
        # the model module and the preset loss module read resolvers in their imports
        ("from pykeen.models import TransE", "VBKGC"),
        ("import pykeen.models", "PresetLoss"),
        ("import pykeen.nn", "VBKGC"),
    ],
)
def test_public_names_import_after_pykeen(first_import, name):
    """Importing one of our names after PyKEEN imports it (no circular import) and registers everything at once."""
    code = textwrap.dedent(
        f"""
        {first_import}
        import sys
        from pykeen_vbkgc import {name}
        # read without going through the module's attribute access, which would register
        print(vars(sys.modules["pykeen.models"])["model_resolver"].lookup("vbkgc").__name__)
        """
    )
    result = run(code + LOOKUPS)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["VBKGC", *EXPECTED]


def test_our_module_imported_after_pykeen_registers_at_the_first_resolver_read():
    result = run("import pykeen.models\nimport pykeen_vbkgc.model\n" + LOOKUPS)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == EXPECTED


@pytest.mark.parametrize(
    ("first_import", "module"),
    [("from pykeen.predict import predict_target", "run_files"), ("import pykeen.models", "cli")],
)
def test_importing_our_module_after_pykeen_registers_at_its_end(first_import, module):
    """The module reads the resolvers (and keeps them) during its own import: registering waits for its end.

    README's ``load_run`` snippet imports ``pykeen.predict`` first: the run's loss was "Invalid Loss name".
    """
    code = textwrap.dedent(
        f"""
        {first_import}
        import sys
        import pykeen_vbkgc.{module}
        from pykeen_vbkgc import registration
        print(registration._registered)
        # read without going through the module's attribute access, which would register
        print(vars(sys.modules["pykeen.losses"])["loss_resolver"].lookup("meanmarginranking").__name__)
        """
    )
    result = run(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "MeanMarginRankingLoss"]


@pytest.mark.parametrize("first_import", ["import pykeen.nn", "import pykeen.nn.init", "import pykeen.datasets"])
def test_each_resolver_knows_our_components_before_pykeen_models_is_imported(first_import):
    """The registration deferred while pykeen.nn was half-imported happens at the first read of any resolver."""
    code = textwrap.dedent(
        """
        import sys
        from pykeen.sampling import negative_sampler_resolver
        print(negative_sampler_resolver.lookup("twins").__name__)
        from pykeen.losses import loss_resolver
        print(loss_resolver.lookup("preset").__name__)
        from pykeen.training import training_loop_resolver
        print(training_loop_resolver.lookup("nosampling").__name__)
        from pykeen.nn.modules import interaction_resolver
        print(interaction_resolver.lookup("vbkgc").__name__)
        # the modules are restored and the import hook is gone
        print(sorted({type(sys.modules[name]).__name__ for name in sys.modules if name.startswith("pykeen")}))
        print([type(finder).__name__ for finder in sys.meta_path if "Register" in type(finder).__name__])
        """
    )
    result = run(first_import + "\n" + code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "TwinsNegativeSampler",
        "PresetLoss",
        "NoSamplingTrainingLoop",
        "VBKGCInteraction",
        "['module']",
        "[]",
    ]


def test_pipeline_by_name_without_importing_the_package():
    code = textwrap.dedent(
        """
        import pykeen.models
        from pykeen.pipeline import pipeline
        result = pipeline(
            model="vbkgc", dataset="nations", negative_sampler="twins", loss="meanmarginranking",
            model_kwargs=dict(embedding_dim=8, feature_dim=8),
            training_kwargs=dict(num_epochs=1, batch_size=512, use_tqdm=False),
            evaluator_kwargs=dict(batch_size=64), random_seed=0,
        )
        print(type(result.model).__name__, type(result.model.loss).__name__)
        """
    )
    result = run(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == ["VBKGC", "MeanMarginRankingLoss"]


def test_register_is_idempotent():
    from pykeen.models import model_resolver

    import pykeen_vbkgc

    assert pykeen_vbkgc.register() is True
    assert pykeen_vbkgc.register() is True
    assert model_resolver.lookup("vbkgc") is pykeen_vbkgc.VBKGC


def test_pykeen_cli_offers_the_model_options():
    """``pykeen train vbkgc`` (PyKEEN's own CLI) builds options from the annotations of ``VBKGC.__init__``."""
    from click.testing import CliRunner
    from pykeen.cli import main

    result = CliRunner().invoke(main, ["train", "vbkgc", "--help"])
    assert result.exit_code == 0, result.output
    for option in (
        "--normalize BOOLEAN",
        "--projection-bias BOOLEAN",
        "--projection-lr-scale FLOAT",
        "--min-feature-coverage FLOAT",
        "--feature-dim INTEGER",
        "--embedding-dim INTEGER",
    ):
        assert option in result.output


def test_pykeen_cli_takes_vbkgc_options_and_says_where_the_twins_sampler_is(tmp_path):
    """``pykeen train vbkgc``: no "Unable to handle parameter", VBKGC's embedding dimension, features, relation
    normalisation and preset loss; the negative sampler stays PyKEEN's basic one (its command has no option for it)."""
    help_run = subprocess.run(
        [sys.executable, "-m", "pykeen", "train", "vbkgc", "--help"], capture_output=True, text=True, timeout=300
    )
    assert help_run.returncode == 0, help_run.stderr
    assert "Unable to handle parameter" not in help_run.stderr
    lines = " ".join(help_run.stdout.split())
    assert "--embedding-dim INTEGER Embedding dimensions for entities. [default: 128]" in lines
    assert "--normalize-relations BOOLEAN L2-normalise relation vectors; default: the preset's." in lines
    assert "For the twins sampler and the presets, use 'pykeen-vbkgc train' (this command has no sampler option)." in (
        lines
    )
    assert "--neighbour-weight FLOAT Weight of the neighbours' vote when ranking (0: none); default: the preset's." in (
        lines
    )
    assert "--num-neighbours INTEGER How many neighbours vote" in lines  # (the help wraps inside a word)

    from click.testing import CliRunner
    from pykeen.cli import main

    from pykeen_vbkgc.registration import PYKEEN_CLI_NOTE

    # other models keep PyKEEN's default
    transe = " ".join(CliRunner().invoke(main, ["train", "transe", "--help"]).output.split())
    assert "--embedding-dim INTEGER Embedding dimensions for entities. [default: 50]" in transe
    output = tmp_path / "run"
    result = CliRunner().invoke(
        main,
        ["train", "vbkgc", "--dataset", "multimodaldemo", "-n", "1", "-b", "512", "--normalize-relations", "false"]
        + ["--term-weights", "mm=0.5", "--output-directory", str(output)],
    )
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0] == PYKEEN_CLI_NOTE
    import torch

    model = torch.load(output / "trained_model.pkl", weights_only=False)
    assert model.entity_representations[0].base.shape == (128,)
    assert model.interaction.normalize_relations is False
    assert model.interaction.term_weights == (1.0, 0.5, 1.0, 1.0, 1.0)
    # without --loss, the preset's loss (the demo's: best, the mean margin loss with margin 10), as in pipeline()
    assert type(model.loss).__name__ == "MeanMarginRankingLoss"
    assert model.loss.margin == 10.0
    # without --scoring-fct-norm, the preset's norm (the demo's: best, L2)
    assert model.interaction.p == 2
    # with them, the ones asked for; the paper preset's norm is L1 (PyKEEN's option passed its default 2 always)
    result = CliRunner().invoke(
        main,
        ["train", "vbkgc", "--dataset", "multimodaldemo", "-n", "1", "--loss", "marginranking", "--silent"]
        + ["--preset", "paper", "--neighbour-weight", "0.5", "--num-neighbours", "7"]
        + ["--output-directory", str(tmp_path / "explicit")],
    )
    assert result.exit_code == 0, result.output
    model = torch.load(tmp_path / "explicit" / "trained_model.pkl", weights_only=False)
    assert type(model.loss).__name__ == "MarginRankingLoss"
    assert model.loss.margin == 1.0
    assert model.interaction.p == 1
    assert model.neighbour_weight == 0.5 and model.neighbour_vote.num_neighbours == 7
