import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from rcdnet_desktop.core.metrics import binary_metrics, bootstrap_ci, ece, fit_temperature, nll


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 80)
    p = np.clip(y * 0.3 + rng.random(80) * 0.7, 0, 1)
    p[:5] = 0.5  # ties and the threshold itself
    m = binary_metrics(y, p)
    pred = (p >= 0.5).astype(int)
    tn, fp, fn, tp = confusion_matrix(y, pred).ravel()
    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert m["precision"] == pytest.approx(precision_score(y, pred))
    assert m["recall"] == pytest.approx(recall_score(y, pred))
    assert m["specificity"] == pytest.approx(tn / (tn + fp))
    assert m["f1"] == pytest.approx(f1_score(y, pred))
    assert m["auc"] == pytest.approx(roc_auc_score(y, p))


def test_bootstrap_ci_contains_point_and_is_seeded():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 100)
    p = np.clip(y * 0.4 + rng.random(100) * 0.6, 0, 1)
    a = bootstrap_ci(y, p, binary_metrics, n_boot=200, seed=1)
    b = bootstrap_ci(y, p, binary_metrics, n_boot=200, seed=1)
    assert a == b
    point = binary_metrics(y, p)
    for k, (lo, hi) in a.items():
        assert lo <= point[k] <= hi
    grouped = bootstrap_ci(y, p, binary_metrics, groups=np.arange(100) // 2, n_boot=200, seed=1)
    assert set(grouped) == set(a)


def test_temperature_fixes_overconfidence():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    true_logit = (y * 2 - 1) * 1.0 + rng.normal(0, 1, 400)
    logits = np.stack([-true_logit, true_logit], 1) * 2.5  # overconfident by 5x
    t = fit_temperature(logits, y)
    assert t > 2
    assert nll(logits, y, t) < nll(logits, y)
    prob = np.exp(logits / t) / np.exp(logits / t).sum(1, keepdims=True)
    raw = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert ece(y, prob) < ece(y, raw)


def test_ece_perfectly_calibrated_is_zero():
    y = np.array([1, 1, 1, 0])  # confidence 0.75 on class 1, 3 of 4 right
    prob = np.tile([0.25, 0.75], (4, 1))
    assert ece(y, prob) == pytest.approx(0.0)


def _write_predictions(folder, logits_by_mode, y, groups):
    folder.mkdir(parents=True, exist_ok=True)
    for mode, lg in logits_by_mode.items():
        np.savez(folder / f"predictions_{mode}.npz", logits=lg, y=y, groups=groups)
    return folder


def test_paired_difference_matches_sklearn_and_separates_real_gaps(tmp_path):
    from sklearn.metrics import roc_auc_score

    from training.paired import paired_difference

    rng = np.random.default_rng(3)
    n = 150
    y = rng.integers(0, 2, n)
    groups = np.arange(n) // 2  # pairs of near-duplicates
    good = np.stack([np.zeros(n), 3.0 * y + rng.normal(0, 1, n)], 1)
    weak = np.stack([np.zeros(n), 0.5 * y + rng.normal(0, 1, n)], 1)
    a = _write_predictions(tmp_path / "a", {"whole": good, "roi": good}, y, groups)
    b = _write_predictions(tmp_path / "b", {"whole": weak, "roi": good}, y, groups)

    d = paired_difference(a, b, "whole", n_boot=300)
    want = roc_auc_score(y, good[:, 1]) - roc_auc_score(y, weak[:, 1])
    assert d["auc"]["value"] == pytest.approx(want, abs=1e-12)
    assert 0 < d["auc"]["ci95"][0] <= want <= d["auc"]["ci95"][1]
    acc = lambda lg: ((lg[:, 1] >= lg[:, 0]) == y).mean()  # noqa: E731
    assert d["accuracy"]["value"] == pytest.approx(acc(good) - acc(weak))

    same = paired_difference(a, b, "roi", n_boot=300)
    assert same["auc"] == {"value": 0.0, "ci95": [0.0, 0.0]}


def test_paired_difference_refuses_different_images(tmp_path):
    from training.paired import paired_difference

    y = np.array([0, 1, 0, 1])
    lg = np.zeros((4, 2))
    a = _write_predictions(tmp_path / "a", {"whole": lg}, y, np.arange(4))
    b = _write_predictions(tmp_path / "b", {"whole": lg}, y[::-1], np.arange(4))
    with pytest.raises(ValueError, match="not evaluated on the same images"):
        paired_difference(a, b, "whole")



def test_paired_difference_between_modes_and_of_an_ensemble(tmp_path, capsys):
    import json

    from training.cli import main
    from training.paired import paired_difference

    rng = np.random.default_rng(0)
    y = np.array([0, 1] * 20)
    groups = np.arange(40) // 2
    good = np.stack([-y * 2.0, y * 2.0], 1) + rng.normal(0, 1, (40, 2))
    noise = rng.normal(0, 1, (40, 2))
    for name, whole, auto in (("a", noise, good), ("b", noise, good + rng.normal(0, 1, (40, 2)))):
        d = tmp_path / name
        d.mkdir()
        for mode, lg in (("whole", whole), ("auto", auto)):
            np.savez(d / f"predictions_{mode}.npz", logits=lg, y=y, groups=groups)
    d = paired_difference(tmp_path / "a", tmp_path / "a", "auto", n_boot=200,
                          reference_mode="whole")
    assert d["auc"]["value"] > 0.3 and d["auc"]["ci95"][0] > 0  # the box beats noise
    same = paired_difference([tmp_path / "a", tmp_path / "a"], tmp_path / "a", "auto",
                             n_boot=50)
    assert same["auc"]["value"] == 0  # an ensemble of one model with itself is that model
    assert main(["paired", "--report", str(tmp_path / "a"), "--report", str(tmp_path / "b"),
                 "--reference", str(tmp_path / "a"), "--mode", "auto",
                 "--reference-mode", "whole"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"]["auc"]["value"] > out["reference"]["auc"]["value"]
    np.savez(tmp_path / "b" / "predictions_whole.npz", logits=noise[:30], y=y[:30],
             groups=groups[:30])
    with pytest.raises(ValueError, match="same"):
        paired_difference([tmp_path / "a", tmp_path / "b"], tmp_path / "a", "whole", n_boot=10)
