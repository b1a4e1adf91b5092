"""MPVAE: loss terms against direct computations, edge cases, and real-data behaviour."""

from __future__ import annotations

import importlib
import itertools
import math

import numpy as np
import pytest
import torch
from helpers import published_parts
from scipy import stats

from benchmark import discovery

discovery.install_aliases()
mpvae = importlib.import_module("mlcbench_models.mpvae")

DTYPE = torch.float64


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """Models here run with n_threads=1 (robust on a shared 2-core CI box); keep the
    process-wide torch setting unchanged for the other test files."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _rand(*shape, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).normal(size=shape)).to(DTYPE)


# --------------------------------------------------------------------------- loss terms


def test_ranking_loss_equals_explicit_pairwise_sum():
    rng = np.random.default_rng(1)
    p = rng.uniform(size=(3, 5, 6))
    y = (rng.uniform(size=(5, 6)) < 0.4).astype(float)
    y[0] = 0  # no positive: contributes 0
    y[1] = 1  # no negative: contributes 0
    y[2] = [1, 0, 0, 0, 0, 0]
    expected = np.zeros((3, 5))
    for s, b in itertools.product(range(3), range(5)):
        pos, neg = np.flatnonzero(y[b] == 1), np.flatnonzero(y[b] == 0)
        if len(pos) and len(neg):
            total = sum(math.exp(-5.0 * (p[s, b, i] - p[s, b, k])) for i in pos for k in neg)
            expected[s, b] = total / (5.0 * len(pos) * len(neg))
    got = mpvae.ranking_loss(torch.from_numpy(p), torch.from_numpy(y))
    assert got.item() == pytest.approx(expected.mean(), rel=1e-12)
    assert expected[:, :2].sum() == 0 and expected[:, 2:].min() > 0


def test_probit_probability_matches_hand_computation():
    """S=2, L=2: p_sj = eps/2 + (1-eps) Phi(m_j + (R eps_s)_j), by hand with scipy."""
    m = np.array([[0.3, -1.2]])
    r = np.array([[0.5, -0.2], [0.1, 0.7]])
    eps_s = np.array([[1.0, -0.5], [-0.3, 2.0]])
    expected = np.empty((2, 1, 2))
    for s in range(2):
        for j in range(2):
            u = m[0, j] + r[j, 0] * eps_s[s, 0] + r[j, 1] * eps_s[s, 1]
            expected[s, 0, j] = 5e-7 + (1 - 1e-6) * stats.norm.cdf(u)
    noise_r = torch.from_numpy(eps_s).unsqueeze(1) @ torch.from_numpy(r).T
    u = mpvae.probit_noise_scores(torch.from_numpy(m), noise_r)
    got = mpvae.squashed_probability(u).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    # The NLL of y = (1, 0) for this case, by the direct product formula.
    y = np.array([[1.0, 0.0]])
    lik = np.mean([expected[s, 0, 0] * (1 - expected[s, 0, 1]) for s in range(2)])
    nll = mpvae.probit_nll(u, torch.from_numpy(y))
    assert nll.item() == pytest.approx(-math.log(lik), rel=1e-10)


def test_nll_logsumexp_form_equals_direct_product_formula():
    rng = np.random.default_rng(2)
    u = rng.normal(scale=2.0, size=(7, 4, 5))
    y = (rng.uniform(size=(4, 5)) < 0.5).astype(float)
    p = 5e-7 + (1 - 1e-6) * stats.norm.cdf(u)
    lik = np.prod(np.where(y == 1, p, 1 - p), axis=2).mean(axis=0)  # (B,)
    got = mpvae.probit_nll(torch.from_numpy(u), torch.from_numpy(y)).item()
    assert got == pytest.approx(-np.log(lik).mean(), rel=1e-10)


def test_log_probability_is_accurate_in_the_tails_in_float32():
    """log p(u) and log(1 - p(u)) = log p(-u) within 3e-6 of float64 truth for u in [-12, 12]."""
    u = np.linspace(-12, 12, 4001)
    truth_log_p = np.where(u > 0, np.log1p(-(5e-7 + (1 - 1e-6) * stats.norm.sf(u))),
                           np.log(5e-7 + (1 - 1e-6) * stats.norm.cdf(u)))
    u32 = torch.tensor(u, dtype=torch.float32, requires_grad=True)
    log_p = torch.log(mpvae.squashed_probability(u32))
    np.testing.assert_allclose(log_p.detach().numpy(), truth_log_p, atol=3e-6, rtol=0)
    log_1mp = torch.log(mpvae.squashed_probability(-u32))
    np.testing.assert_allclose(log_1mp.detach().numpy(), truth_log_p[::-1], atol=3e-6, rtol=0)
    (log_p.sum() + log_1mp.sum()).backward()
    assert torch.isfinite(u32.grad).all()
    # d/du log p(u) = (1 - eps) phi(u) / p(u): compare on a moderate range
    grad_truth = (1 - 1e-6) * stats.norm.pdf(u) / (5e-7 + (1 - 1e-6) * stats.norm.cdf(u))
    grad_truth -= (1 - 1e-6) * stats.norm.pdf(u) / (5e-7 + (1 - 1e-6) * stats.norm.sf(u))
    mid = np.abs(u) < 6
    np.testing.assert_allclose(u32.grad.numpy()[mid], grad_truth[mid], rtol=1e-4, atol=1e-6)


def test_fused_branch_losses_equal_the_separate_definitions():
    rng = np.random.default_rng(11)
    u = torch.from_numpy(rng.normal(scale=1.5, size=(6, 5, 7)))
    y = torch.from_numpy((rng.uniform(size=(5, 7)) < 0.4).astype(float))
    y[0] = 0
    nll, rank = mpvae.branch_losses(u, y)
    assert nll.item() == pytest.approx(mpvae.probit_nll(u, y).item(), rel=1e-12)
    assert rank.item() == pytest.approx(mpvae.ranking_loss(mpvae.squashed_probability(u), y).item(), rel=1e-10)


def _probit_case(seed, dtype=DTYPE, device="cpu", S=7, B=5, L=6, K=4, shared=False):
    g = torch.Generator().manual_seed(seed)
    m_e, m_x = (torch.randn(B, L, generator=g, dtype=dtype) * 1.5 for _ in range(2))
    r = torch.randn(L, K, generator=g, dtype=dtype) * 0.7
    noise = torch.randn(S, 1 if shared else B, K, generator=g, dtype=dtype)
    y = (torch.rand(B, L, generator=g) < 0.4).to(dtype)
    y[0], y[1] = 0, 1  # a row without positives and one without negatives
    return [t.to(device) for t in (m_e, m_x, r, noise, y)]


def _autograd_reference(m_e, m_x, r, noise, y):
    """The four probit terms by autograd on the plain definitions (branch_losses)."""
    noise_r = noise @ r.T
    return [*mpvae.branch_losses(m_e + noise_r, y), *mpvae.branch_losses(m_x + noise_r, y)]


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("chunk", [1, 3, 7, None])
def test_fused_probit_losses_match_autograd_on_the_definitions(chunk, shared):
    """Values and gradients (m_e, m_x, R) of the hand-written backward, any chunking, float64;
    ``shared``: one (S, 1, K) draw broadcast over the batch (``shared_noise``)."""
    m_e, m_x, r, noise, y = _probit_case(5, shared=shared)
    weights = torch.tensor([0.3, 1.7, -0.4, 2.1], dtype=DTYPE)
    grads = []
    for fn in (lambda *a: mpvae.probit_losses(*a, chunk=chunk), _autograd_reference):
        leaves = [t.clone().requires_grad_() for t in (m_e, m_x, r)]
        out = torch.stack(list(fn(*leaves, noise, y)))
        (out * weights).sum().backward()
        grads.append((out.detach(), [t.grad for t in leaves]))
    (fused, g_fused), (ref, g_ref) = grads
    torch.testing.assert_close(fused, ref, rtol=1e-12, atol=1e-14)
    for a, b in zip(g_fused, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-13)
    assert fused[1] > 0 and fused[3] > 0 and all(g.abs().sum() > 0 for g in g_fused)


def test_two_live_probit_graphs_do_not_share_pooled_buffers():
    """Buffers are reused across steps; two graphs alive at once (then a third after both
    backwards, which reuses their buffers) must each get the autograd gradients."""
    cases = [_probit_case(seed, S=6, B=4, L=5, K=5) for seed in (21, 22, 23)]
    order = [0, 1, None, 2]  # two forwards, both backwards, then a third step
    fused, pending = {}, []
    for i in order:
        if i is None:
            for j, leaves, out in pending:
                out.sum().backward()
                fused[j] = [t.grad for t in leaves]
            continue
        m_e, m_x, r, noise, y = cases[i]
        leaves = [t.clone().requires_grad_() for t in (m_e, m_x, r)]
        pending.append((i, leaves, torch.stack(list(mpvae.probit_losses(*leaves, noise, y, chunk=2)))))
    _, leaves, out = pending[-1]
    out.sum().backward()
    fused[2] = [t.grad for t in leaves]
    for i, (m_e, m_x, r, noise, y) in enumerate(cases):
        leaves = [t.clone().requires_grad_() for t in (m_e, m_x, r)]
        torch.stack(_autograd_reference(*leaves, noise, y)).sum().backward()
        for a, b in zip(fused[i], (t.grad for t in leaves)):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-13)


def test_fused_probit_losses_refuse_a_second_backward():
    """The backward reuses its saved buffer, so a retained graph must not be replayed silently."""
    m_e, m_x, r, noise, y = _probit_case(8)
    m_e.requires_grad_()
    total = sum(mpvae.probit_losses(m_e, m_x, r, noise, y))
    total.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="twice"):
        total.backward()


def test_probit_terms_stay_float32_under_bf16_autocast():
    """Under autocast the probit part is computed from float32 inputs (as without autocast)."""
    m_e, m_x, r, noise, y = _probit_case(6, dtype=torch.float32)
    plain = torch.stack(list(mpvae.probit_losses(m_e, m_x, r, noise, y)))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        cast = torch.stack(list(mpvae.probit_losses(m_e, m_x, r, noise, y)))
    assert cast.dtype == torch.float32
    torch.testing.assert_close(cast, plain, rtol=0, atol=0)
    # the whole loss: bf16 network outputs, float32 noise and probit terms
    torch.manual_seed(0)
    net = mpvae.MPVAENetwork(n_features=5, n_labels=4, latent_dim=3)
    x, y = torch.randn(3, 5), torch.tensor([[1.0, 0, 0, 1], [0, 1, 0, 0], [1, 1, 0, 1]])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(x, y)
        parts = mpvae.mpvae_loss(net, out, y, n_samples=6, nll_coeff=0.1, c_coeff=20, beta=1.1, l2_coeff=1.0)
    assert out["m_e"].dtype == torch.bfloat16
    assert all(parts[k].dtype == torch.float32 for k in ("nll_e", "rank_e", "nll_x", "rank_x"))
    # prediction from bf16 means: both estimators in float32, and they agree
    with torch.autocast("cpu", dtype=torch.bfloat16):
        exact = mpvae.expected_probability(out["m_x"], net.r)
        mc = mpvae.monte_carlo_probability(out["m_x"], net.r, 20000)
    assert exact.dtype == mc.dtype == torch.float32
    torch.testing.assert_close(mc, exact, rtol=0, atol=0.02)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fused_probit_losses_on_cuda_match_cpu():
    cpu = _probit_case(7, dtype=torch.float32, S=100, B=16, L=40, K=40)
    values = []
    for device in ("cpu", "cuda"):
        m_e, m_x, r = (t.to(device).requires_grad_() for t in cpu[:3])
        out = torch.stack(list(mpvae.probit_losses(m_e, m_x, r, cpu[3].to(device), cpu[4].to(device))))
        out.sum().backward()
        values.append([out.detach().cpu()] + [t.grad.cpu() for t in (m_e, m_x, r)])
    for a, b in zip(*values):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_mpvae_fits_on_cuda_with_and_without_amp(mirror_dir):
    data = published_parts("yeast")
    (X, Y), (Xv, Yv) = data["train"], data["val"]
    for amp in (False, True):
        model = mpvae.MPVAE(seed=0, device="cuda", epochs=3, amp=amp).fit(X, Y, Xv, Yv)
        scores = model.predict_proba(Xv)
        assert np.isfinite(model.fit_info["train_loss"]).all() and ((scores > 0) & (scores < 1)).all()
        assert _val_protocol(data, model)["miF1"] > 0.5


def test_reference_params_are_the_papers_rows_and_copies():
    delicious = mpvae.reference_params("delicious")
    assert (delicious["n_train_samples"], delicious["rank"], delicious["lr"], delicious["nll_coeff"]) == (5, 0, 5e-4, 10.0)
    assert mpvae.reference_params("Yeast")["n_train_samples"] == 100
    assert mpvae.reference_params("nus_wide")["epochs"] == 50
    assert mpvae.reference_params("emotions") == {}  # no reference row: model defaults
    delicious["lr"] = 1.0
    assert mpvae.reference_params("delicious")["lr"] == 5e-4
    assert all(set(row) <= set(mpvae.MPVAE.defaults) for row in mpvae.REFERENCE_SETTINGS.values())


def test_rank_hyperparameter_sets_the_shape_of_r():
    assert mpvae.MPVAE(rank=3).build_network(5, 8).r.shape == (8, 3)
    assert mpvae.MPVAE().build_network(5, 8).r.shape == (8, 8)  # rank 0 = L, the reference


def test_closed_form_kl_matches_monte_carlo():
    mu_q, lv_q = _rand(2, 3, seed=3), _rand(2, 3, seed=4) * 0.5
    mu_p, lv_p = _rand(2, 3, seed=5), _rand(2, 3, seed=6) * 0.5
    q = torch.distributions.Normal(mu_q, torch.exp(0.5 * lv_q))
    p = torch.distributions.Normal(mu_p, torch.exp(0.5 * lv_p))
    torch.manual_seed(0)
    z = q.sample((400_000,))
    monte_carlo = (q.log_prob(z) - p.log_prob(z)).sum(-1).mean(0).mean().item()
    exact = torch.distributions.kl_divergence(q, p).sum(-1).mean().item()
    got = mpvae.gaussian_kl(mu_q, lv_q, mu_p, lv_p).item()
    assert got == pytest.approx(exact, rel=1e-12)
    assert got == pytest.approx(monte_carlo, abs=0.02)
    assert mpvae.gaussian_kl(mu_q, lv_q, mu_q, lv_q).item() == pytest.approx(0.0, abs=1e-12)


def test_expected_probability_is_the_monte_carlo_limit():
    m = _rand(3, 4, seed=7)
    r = _rand(4, 4, seed=8) * 0.6
    torch.manual_seed(1)
    noise_r = torch.randn(200_000, 1, 4, dtype=DTYPE) @ r.T
    mc = mpvae.squashed_probability(m.unsqueeze(0) + noise_r).mean(0)
    exact = mpvae.expected_probability(m, r)
    np.testing.assert_allclose(exact.numpy(), mc.numpy(), atol=4e-3)


def test_l2_penalty_is_half_squared_norm():
    w = [_rand(3, 2, seed=9), _rand(4, seed=10)]
    expected = 0.5 * sum(float((t.numpy() ** 2).sum()) for t in w)
    assert mpvae.l2_penalty(w).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("labels", ["none", "all", "mixed"])
def test_no_positive_or_all_positive_rows_give_finite_loss_and_gradients(labels):
    torch.manual_seed(0)
    net = mpvae.MPVAENetwork(n_features=5, n_labels=4, latent_dim=3)
    x = torch.randn(3, 5)
    y = {"none": torch.zeros(3, 4), "all": torch.ones(3, 4),
         "mixed": torch.tensor([[0.0, 0, 0, 0], [1, 1, 1, 1], [1, 0, 1, 0]])}[labels]
    parts = mpvae.mpvae_loss(net, net(x, y), y, n_samples=8, nll_coeff=0.1, c_coeff=20, beta=1.1, l2_coeff=1.0)
    parts["total"].backward()
    assert all(torch.isfinite(v).all() for v in parts.values())
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    if labels != "mixed":
        assert parts["rank_e"].item() == 0 and parts["rank_x"].item() == 0
    else:
        assert parts["rank_x"].item() > 0


# --------------------------------------------------------------------------- the model


def test_hyperparameters_follow_the_reference_and_search_space_is_valid():
    cls = mpvae.MPVAE
    d = cls.defaults
    assert (d["lr"], d["epochs"], d["c_coeff"], d["nll_coeff"], d["l2_coeff"]) == (6e-4, 800, 20.0, 0.1, 1.0)
    assert (d["beta"], d["dropout"], d["latent_dim"], d["n_train_samples"], d["batch_size"]) == (1.1, 0.5, 50, 100, 128)
    assert mpvae.REFERENCE_SETTINGS["scene"]["c_coeff"] == 40.0
    assert mpvae.REFERENCE_SETTINGS["sider"]["dropout"] == pytest.approx(0.1)  # keep_prob 0.9
    assert set(cls.search_space) <= set(d)
    with pytest.raises(ValueError, match="keep_prob"):
        cls(dropout=1.0).fit(np.zeros((4, 2), np.float32), np.zeros((4, 2), np.uint8))


def test_staircase_decay_schedule():
    model = mpvae.MPVAE(lr=1.0, epochs=10, lr_decay_ratio=0.5, lr_decay_times=5)
    net = torch.nn.Linear(1, 1)
    optimizer = model.make_optimizer(net)
    scheduler, interval = model.make_scheduler(optimizer, steps_per_epoch=3)  # decays every 6 steps
    assert interval == "step"
    lrs = []
    for _ in range(13):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs == [1.0] * 6 + [0.5] * 6 + [0.25]


def test_tiny_data_trains_on_one_batch_with_sparse_input_and_empty_label():
    """n < batch_size: the dropped-last-batch rule keeps one batch; CSR input; a label
    column without positives; predictions are probabilities."""
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    X = sp.random(40, 12, density=0.3, format="csr", dtype=np.float32, random_state=0)
    Y = (rng.uniform(size=(40, 5)) < 0.4).astype(np.uint8)
    Y[:, 3] = 0
    Y[0] = 0
    model = mpvae.MPVAE(n_threads=1, epochs=3, n_train_samples=10).fit(X[:30], Y[:30], X[30:], Y[30:])
    assert model.fit_info["n_epochs"] == 3 and len(model.fit_info["val_scores"]) == 3
    assert np.isfinite(model.fit_info["train_loss"]).all()
    scores = model.predict_proba(X[30:])
    assert scores.shape == (10, 5) and (scores > 0).all() and (scores < 1).all()
    # Monte-Carlo prediction (the reference's estimator) agrees with the exact expectation.
    exact = model.predict_proba(X[30:])
    model.params["n_test_samples"] = 20000
    approx = model.predict_proba(X[30:])
    assert 0 < np.abs(approx - exact).max() < 0.01


# --------------------------------------------------------------------------- real data


def _val_protocol(data, model_or_scores):
    from benchmark.evaluation.thresholds import evaluate_protocols

    if isinstance(model_or_scores, tuple):
        s_val, s_test = model_or_scores
    else:
        s_val, s_test = model_or_scores.predict_proba(data["val"][0]), model_or_scores.predict_proba(data["test"][0])
    return evaluate_protocols(data["val"][1], s_val, data["test"][1], s_test)["val"]["metrics"]


# P@1 margin over the trivial predictor. On yeast the most frequent label is in ~75% of
# the examples, so always ranking it first already gives P@1 0.750 on the test set;
# neither binary relevance (0.745) nor mpvae (0.73-0.74) beats that, so there we only
# require P@1 within 0.03 of it (and of binary relevance). On scene P@1 must beat it.
P_AT_1_MARGIN = {"yeast": -0.03, "scene": 0.02}


@pytest.mark.slow
@pytest.mark.parametrize("name, epochs, shared_noise", [("yeast", 60, False), ("scene", 40, False),
                                                        ("scene", 40, True)])
@pytest.mark.slow
def test_beats_trivial_and_lands_near_binary_relevance(name, epochs, shared_noise, mirror_dir):
    from benchmark.modelapi.base import get_model

    data = published_parts(name)
    (X, Y), (Xv, Yv), (Xt, _) = data["train"], data["val"], data["test"]
    params = {**mpvae.REFERENCE_SETTINGS[name], "epochs": epochs, "shared_noise": shared_noise}
    model = mpvae.MPVAE(seed=0, n_threads=1, **params).fit(X, Y, Xv, Yv)
    ours = _val_protocol(data, model)
    freq = Y.mean(axis=0, dtype=np.float64)
    trivial = _val_protocol(data, (np.tile(freq, (len(Xv), 1)), np.tile(freq, (len(Xt), 1))))
    br = _val_protocol(data, get_model("br")(seed=0).fit(X, Y))
    print(f"\n{name}: mpvae miF1 {ours['miF1']:.4f} P@1 {ours['P@1']:.4f} maF1 {ours['maF1']:.4f} "
          f"(best epoch {model.fit_info['best_epoch']}/{epochs}) | trivial miF1 {trivial['miF1']:.4f} "
          f"P@1 {trivial['P@1']:.4f} | br miF1 {br['miF1']:.4f} P@1 {br['P@1']:.4f}")
    assert ours["miF1"] > trivial["miF1"] + 0.02
    assert ours["P@1"] > trivial["P@1"] + P_AT_1_MARGIN[name]
    assert ours["P@1"] > br["P@1"] - 0.03
    assert ours["miF1"] > br["miF1"] - 0.03  # same range as binary relevance (or better)


def test_same_seed_gives_identical_scores_on_cpu(mirror_dir):
    data = published_parts("yeast")
    (X, Y), (Xv, Yv) = data["train"], data["val"]
    runs = [mpvae.MPVAE(seed=s, n_threads=1, epochs=2, n_train_samples=20).fit(X[:400], Y[:400], Xv, Yv).predict_proba(Xv)
            for s in (3, 3, 4)]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert np.abs(runs[0] - runs[2]).max() > 1e-3
