"""``xaffect demo``: simulate a study with a known answer and run every stage on it."""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path

import click

__all__ = ["run_demo", "prepare_demo_study", "make_small_hubert", "demo_settings", "DEEP_TARGET", "CLI_COMMANDS"]


#: VGGish layers the demo encodes: pool1-4, relu5_1, relu5_2 and the embedding.
VGGISH_LAYERS = (3, 6, 11, 16, 18, 20, 22)

#: The deep plant of the demo: a region driven by one layer of the deep model, for the voice.
DEEP_TARGET = "region:superiortemporal-lh"


def _n_hidden_states(model_dir: str | Path) -> int | None:
    cfg = Path(model_dir) / "config.json"
    if not cfg.is_file():
        return None
    n = json.loads(cfg.read_text()).get("num_hidden_layers")
    return None if n is None else int(n) + 1


def make_small_hubert(path: str | Path, *, seed: int = 0) -> Path:
    """A randomly initialised HuBERT of reduced width (the quick demo's model).

    The HuBERT-base architecture (group-norm convolutional feature encoder,
    convolutional position embedding, post-norm transformer blocks) with 8
    blocks of 192 units and 128 convolution channels: about 30 times faster
    than base on a CPU, and, unlike ``make_random_model(size="tiny")`` whose
    3 layer-norm blocks of 32 units all carry the same representation, its
    layers differ enough for a layer-specific plant.

    Returns
    -------
    Path
        The model folder (loadable by :func:`xaffect.features.hf.load_model`).
    """
    import torch
    import transformers as tf

    path = Path(path).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(int(seed))
    cfg = tf.HubertConfig(hidden_size=192, num_hidden_layers=8, num_attention_heads=4, intermediate_size=768,
                          conv_dim=(128,) * 7, feat_extract_norm="group", num_conv_pos_embeddings=64)
    model = tf.HubertModel(cfg).eval()
    model.save_pretrained(path)
    tf.Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=False,
                                return_attention_mask=False).save_pretrained(path)
    return path


def demo_settings(quick: bool) -> dict:
    """The simulation and stage settings of ``xaffect demo`` (``quick``: the two-minute one).

    Returns
    -------
    dict
        ``simulate`` (keyword arguments of :func:`simulate_study`),
        ``model_size`` (random HuBERT: ``base``, ``tiny`` or ``small``), ``n_perm`` (encode nulls),
        ``pca`` (components of the reduced deep feature sets).
    """
    if quick:
        return {"simulate": {"n_subjects": 6, "n_stimuli": 5, "duration": 30.0, "effect_size": 1.5,
                             "leakage_share": 0.003},
                "model_size": "small", "n_perm": 200, "pca": 12}
    # leakage_share: source leaks of 0.4-2 % of a planted region were FDR-significant here
    return {"simulate": {"n_subjects": 8, "n_stimuli": 6, "duration": 40.0, "effect_size": 1.2,
                         "leakage_share": 0.003},
            "model_size": "base", "n_perm": 500, "pca": 12}


def prepare_demo_study(out: str | Path, *, seed: int = 0, quick: bool = False, model: str | None = None,
                       deep_layer: int | None = None, settings: dict | None = None, echo=print,
                       progress: bool = True) -> Path:
    """Write the demo's simulated study: random models, a deep plant, every feature set.

    A randomly initialised HuBERT (``base`` size; with ``quick`` the reduced
    :func:`make_small_hubert`)
    and VGGish are saved under ``out/models`` unless ``model`` names real
    weights; the voice's ``deep_layer`` (default: two thirds up the model)
    drives :data:`DEEP_TARGET`, next to the classical plants of
    :data:`~xaffect.datasets.simulate.DEFAULT_PLANTS`.

    Returns
    -------
    Path
        The ``study.yaml``.
    """
    from ..features import make_random_model
    from .simulate import DEFAULT_PLANTS, simulate_study

    out = Path(out).expanduser().resolve()
    st = settings or demo_settings(quick)
    models = out / "models"
    if model is None:
        if st["model_size"] == "small":
            model_dir = make_small_hubert(models / "hubert-random", seed=seed)
        else:
            model_dir = make_random_model("hubert", models / "hubert-random", seed=seed, size=st["model_size"])
        deep_name = "hubert-random"
    else:
        model_dir = model
        deep_name = Path(str(model).rstrip("/")).name.replace(".", "-") or "deep"
    vggish = make_random_model("vggish", models / "vggish-random", seed=seed)
    n_states = _n_hidden_states(model_dir)
    if deep_layer is None:
        deep_layer = int(round(2 * ((n_states or 13) - 1) / 3))
    pca = st.get("pca")
    deep_set = f"{deep_name}.pca{pca}" if pca else deep_name
    # the classical plants, the voice's region plant replaced by the deep one
    plants = [p for p in DEFAULT_PLANTS if p["target"] != DEEP_TARGET]
    plants.append({"target": DEEP_TARGET, "element": "voice", "layer": deep_layer})
    extractors = [{"kind": "lld", "name": "lld"},
                  {"kind": "hf", "name": deep_name, "model": str(model_dir), "pca": pca},
                  # pool and fully connected outputs; examples every 0.5 s so every 1-s clock bin holds one
                  {"kind": "vggish", "name": "vggish-random", "checkpoint": str(vggish), "pca": pca,
                   "layers": list(VGGISH_LAYERS), "hop_seconds": 0.5}]
    feature_sets = ["features.lld", f"features.{deep_set}",
                    f"features.vggish-random.pca{pca}" if pca else "features.vggish-random"]
    config = {"features": {"extractors": extractors},
              "encode": {"feature_sets": feature_sets, "n_perm": int(st["n_perm"]), "seed": int(seed)}}
    echo(f"simulating a study in {out} (seed {seed}{', quick' if quick else ''}; deep plant: "
         f"{DEEP_TARGET} <- voice layer {deep_layer} of {deep_name}) …")
    return simulate_study(out, seed=seed, model=model_dir, plants=plants, deep_feature_set=deep_set,
                          classical_feature_set="lld", config=config, overwrite=True, progress=progress,
                          **st["simulate"])


def run_demo(out: str | Path = "xaffect-demo", *, seed: int = 0, quick: bool = False, model: str | None = None,
             scheduler: str = "threads", echo=print, progress: bool = True, deep_layer: int | None = None,
             settings: dict | None = None) -> dict:
    """Simulate a study, run every stage, compare planted and recovered effects.

    Parameters
    ----------
    out : path
        Folder for the simulated study, its workspace and its report.
    seed : int
        Seed of the simulation (and of the random weights).
    quick : bool
        A smaller study (fewer stimuli, shorter ones, a reduced-width HuBERT).
    model : str, optional
        A Hugging Face id or local directory of real weights for the deep
        feature set; by default randomly initialised models of the real
        architectures are used (weights cannot be downloaded here).
    scheduler : str
        dask scheduler (see :func:`xaffect.use_scheduler`).
    deep_layer : int, optional
        Layer of the deep plant (default two thirds up the model).
    settings : dict, optional
        Overrides :func:`demo_settings`.

    Returns
    -------
    dict
        ``{"study", "report", "summary", "ground_truth", "comparison", "seconds"}``;
        ``comparison`` is the report's
        :func:`~xaffect.analysis.compare_with_ground_truth`.
    """
    from ..store import use_scheduler
    from ..study import load_study, run_study

    t0 = time.perf_counter()
    out = Path(out).expanduser().resolve()
    if model is None:
        echo("note: deep features come from RANDOMLY INITIALISED HuBERT and VGGish models of the real "
             "architectures (no weights can be downloaded here); pass --model ID_OR_PATH for real weights.")
    study_path = prepare_demo_study(out, seed=seed, quick=quick, model=model, deep_layer=deep_layer,
                                    settings=settings, echo=echo, progress=progress)
    echo("note: the stems stage reads the TRUE voice and soundtrack of the simulation (stems_dir "
         "stimuli/truth), not a separation of the mixtures.")
    study = load_study(study_path)
    with use_scheduler(scheduler):
        run_study(study, progress=progress, echo=echo)
    report_dir = Path(study.workspace.url) / "report"
    summary = json.loads((report_dir / "summary.json").read_text())
    truth = json.loads((out / "ground_truth.json").read_text())
    result = {"study": str(study_path), "report": str(report_dir / "report.html"), "summary": summary,
              "ground_truth": truth, "seconds": time.perf_counter() - t0}
    if "comparison" in summary:
        result["comparison"] = summary["comparison"]
    else:
        from ..analysis import compare_with_ground_truth

        result["comparison"] = compare_with_ground_truth(study.workspace.open("scores"), truth)
    return result


@click.command("demo")
@click.option("--out", default="xaffect-demo", show_default=True, help="Folder for the simulated study and report.")
@click.option("--seed", default=0, show_default=True, help="Simulation seed.")
@click.option("--quick", is_flag=True, help="A smaller study that finishes in about two minutes.")
@click.option("--model", default=None, help="Hugging Face id or local path of real weights (default: random init).")
@click.option("--scheduler", default="threads", show_default=True, help="dask scheduler or tcp:// address.")
def demo_command(out: str, seed: int, quick: bool, model: str | None, scheduler: str) -> None:
    """Simulate a study with planted effects, run every stage, report planted vs recovered."""
    from ..cli import _user_errors

    @_user_errors
    def _go():
        res = run_demo(out, seed=seed, quick=quick, model=model, scheduler=scheduler, echo=click.echo)
        cmp = res["comparison"]
        click.echo("")
        click.echo("planted effect" + " " * 40 + "→ recovered")
        for row in cmp["planted"]:
            mark = "✓" if row["recovered"] else "✗"
            layer = "classical" if row.get("layer") is None else f"layer {row['layer']}"
            got = "classical" if row.get("recovered_layer") is None else f"layer {row['recovered_layer']}"
            click.echo(f" {mark} {row['target']:<28s} {row['element']:>10s} {row['feature_set']}/{layer}"
                       f"  → best {row['preferred_element']} {got}, r={row['r']:.2f}, p_fdr={row['p_fdr']:.3g}")
        null = cmp["null"]
        click.echo(f"recovered {sum(r['recovered'] for r in cmp['planted'])}/{len(cmp['planted'])} planted effects; "
                   f"null targets significant after FDR: {null['n_significant']}/{null['n']} "
                   f"({100 * null['fraction']:.0f} %)")
        click.echo("stems: the simulation's true voice and soundtrack (stems_dir), not a separation")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        click.echo(f"wall time {res['seconds']:.0f} s, peak memory {peak:.0f} MiB")
        click.echo(f"report: {res['report']}")

    _go()


CLI_COMMANDS = [demo_command]
