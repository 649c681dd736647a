"""Tests of tdann.losses: spatial loss (hand cases, invariances, gradients, batching), NT-Xent, MoCo."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tdann.losses import SpatialLoss, sl_abs, sl_rel
from tdann.models import build_model
from tdann.ssl import MoCo, ProjectionHead, nt_xent


def _np_sl(x: np.ndarray, pos: np.ndarray) -> tuple[float, float]:
    """Reference SL_Rel and SL_Abs straight from docs/reference.md §2 with numpy."""
    r = np.corrcoef(x.T)
    d = 1.0 / (np.sqrt(((pos[:, None] - pos[None]) ** 2).sum(-1)) + 1.0)
    rows, cols = np.tril_indices(len(pos), k=-1)
    rel = (1.0 - np.corrcoef(r[rows, cols], d[rows, cols])[0, 1]) / 2.0
    return rel, float(np.abs(r[rows, cols] - d[rows, cols]).mean())


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.tensor(a, dtype=torch.float64)


# three units: 0 and 1 perfectly correlated, 2 anti-correlated with both -> r_tri = [1, -1, -1]
RESP3 = np.array([[1.0, 2.0, 4.0], [2.0, 4.0, 3.0], [3.0, 6.0, 2.0], [4.0, 8.0, 1.0]])


def test_sl_rel_zero_when_correlation_order_matches_distance() -> None:
    pos = np.array([[0.0, 0.0], [0.0, 1.0], [2.0, 0.5]])  # unit 2 equidistant from 0 and 1 -> D_tri ~ [a, b, b]
    assert float(sl_rel(_t(RESP3), _t(pos))) == pytest.approx(0.0, abs=1e-12)


def test_sl_rel_one_when_order_is_reversed() -> None:
    pos = np.array([[0.0, 0.0], [0.0, 3.0], [0.0, 1.5]])  # 0 and 1 far apart, 2 between them
    assert float(sl_rel(_t(RESP3), _t(pos))) == pytest.approx(1.0, abs=1e-12)


def test_sl_abs_by_hand() -> None:
    pos = np.array([[0.0, 0.0], [0.0, 1.0], [3.0, 4.0]])
    d10, d20, d21 = 1 / 2, 1 / 6, 1 / (1 + np.sqrt(18))
    expected = (abs(1 - d10) + abs(-1 - d20) + abs(-1 - d21)) / 3
    assert float(sl_abs(_t(RESP3), _t(pos))) == pytest.approx(expected, rel=1e-12)


def test_sl_matches_numpy_reference_on_random_data() -> None:
    rng = np.random.default_rng(0)
    x, pos = rng.normal(size=(16, 6)), rng.uniform(0, 3, size=(6, 2))
    rel, ab = _np_sl(x, pos)
    assert float(sl_rel(_t(x), _t(pos))) == pytest.approx(rel, rel=1e-10)
    assert float(sl_abs(_t(x), _t(pos))) == pytest.approx(ab, rel=1e-10)


def test_sl_rel_invariant_to_per_unit_scale_and_shift() -> None:
    rng = np.random.default_rng(1)
    x, pos = rng.normal(size=(20, 5)), rng.uniform(0, 2, size=(5, 2))
    scale, shift = rng.uniform(0.01, 100, size=5), rng.normal(0, 50, size=5)
    base = float(sl_rel(_t(x), _t(pos)))
    assert float(sl_rel(_t(x * scale + shift), _t(pos))) == pytest.approx(base, rel=1e-9)
    assert base != pytest.approx(float(sl_rel(_t(x), _t(pos * 3))), rel=1e-3)  # but not to the sheet scale


def test_distance_matching_correlations_give_zero() -> None:
    """Responses whose correlation matrix is exactly D = 1/(d+1): SL_Rel = SL_Abs = 0."""
    rng = np.random.default_rng(2)
    k, b = 5, 12
    pos = rng.uniform(0, 2, size=(k, 2))
    d = 1.0 / (np.sqrt(((pos[:, None] - pos[None]) ** 2).sum(-1)) + 1.0)
    z = rng.normal(size=(b, k))
    z, _ = np.linalg.qr(z - z.mean(axis=0))  # centred, orthonormal columns
    x = z @ np.linalg.cholesky(d).T  # x.T @ x = D, already centred
    assert float(sl_rel(_t(x), _t(pos))) == pytest.approx(0.0, abs=1e-10)
    assert float(sl_abs(_t(x), _t(pos))) == pytest.approx(0.0, abs=1e-10)
    assert float(sl_rel(_t(rng.normal(size=(b, k))), _t(pos))) > 0.05


def test_sl_rel_gradcheck() -> None:
    torch.manual_seed(0)
    x = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    pos = torch.rand(4, 2, dtype=torch.float64) * 2
    assert torch.autograd.gradcheck(lambda a: sl_rel(a, pos), (x,))
    assert torch.autograd.gradcheck(lambda a: sl_abs(a, pos), (x,))


def _layer(seed: int = 0, n_units: int = 60, k: int = 7, n_nb: int = 12):
    g = np.random.default_rng(seed)
    pos = g.uniform(0, 5, size=(n_units, 2)).astype(np.float32)
    nbs = np.stack([g.choice(n_units, k, replace=False) for _ in range(n_nb)])
    return pos, nbs


@pytest.mark.parametrize(("kind", "batch"), [("rel", 10), ("rel", 5), ("abs", 10)])
def test_batched_equals_loop_over_neighbourhoods(kind: str, batch: int) -> None:
    """Batched loss == mean of the one-neighbourhood reference, for k <= B and k > B (Gram form)."""
    pos, nbs = _layer()
    loss = SpatialLoss(pos, nbs, kind=kind, neighborhoods_per_batch=5).double()
    feats = torch.randn(batch, 60, dtype=torch.float64)
    idx = torch.tensor([3, 0, 11, 7, 5])
    fn = sl_rel if kind == "rel" else sl_abs
    looped = torch.stack([fn(feats[:, nbs[i]], torch.tensor(pos[nbs[i]], dtype=torch.float64)) for i in idx])
    torch.testing.assert_close(loss.loss_at(feats, idx), looped.mean(), rtol=1e-6, atol=1e-7)
    uncached = SpatialLoss(pos, nbs, kind=kind, cache_mb=0)
    torch.testing.assert_close(uncached.loss_at(feats.float(), idx), loss.loss_at(feats.float(), idx))


def test_spatial_loss_accurate_for_strongly_correlated_units() -> None:
    """float32 batched loss stays close to the float64 reference when all correlations are near 1."""
    pos, nbs = _layer(4, n_units=300, k=120, n_nb=4)
    loss = SpatialLoss(pos, nbs, neighborhoods_per_batch=4)
    torch.manual_seed(1)
    for batch in (16, 200):  # k > B (Gram form) and k <= B
        common = torch.randn(batch, 1)
        feats = (0.99 * common + 0.01 * torch.randn(batch, 300)) * (1 + 3 * torch.rand(300)) + 5
        ref = torch.stack([sl_rel(feats[:, nb].double(), torch.tensor(pos[nb], dtype=torch.float64)) for nb in nbs])
        assert float(loss.loss_at(feats, torch.arange(4))) == pytest.approx(float(ref.mean()), abs=1e-4)


def test_spatial_loss_gradcheck_and_constant_units() -> None:
    pos, nbs = _layer(1, n_units=20, k=4, n_nb=3)
    loss = SpatialLoss(pos, nbs, neighborhoods_per_batch=3)
    x = torch.randn(5, 20, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: loss.loss_at(a, torch.arange(3)), (x,))
    feats = torch.randn(8, 20)
    feats[:, nbs[0, :2]] = 3.0  # two constant units (e.g. dead ReLUs)
    feats.requires_grad_(True)
    value = loss.loss_at(feats, torch.arange(3))
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(feats.grad).all()


def test_spatial_loss_sampling_and_input_checks() -> None:
    pos, nbs = _layer(2)
    loss = SpatialLoss(pos, nbs, neighborhoods_per_batch=5)
    idx = loss.sample(torch.Generator().manual_seed(3))
    assert len(idx) == 5 and len(set(idx.tolist())) == 5
    assert torch.equal(idx, loss.sample(torch.Generator().manual_seed(3)))
    feats = torch.randn(6, 3, 4, 5)  # (B, C, H, W) is flattened channel-major: 60 units
    a = loss(feats, torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, loss.loss_at(feats.flatten(1), idx))
    assert 0.0 <= float(a) <= 1.0
    units = feats.flatten(1)[:, torch.as_tensor(nbs)[idx].reshape(-1)]  # e.g. gathered across processes
    torch.testing.assert_close(loss.loss_of_units(units, idx), a)
    with pytest.raises(ValueError, match="units must be"):
        loss.loss_of_units(units[:, :-1], idx)
    assert len(SpatialLoss(pos, nbs, neighborhoods_per_batch=100).sample()) == len(nbs)
    with pytest.raises(ValueError, match="61"):
        loss(torch.randn(6, 61))
    with pytest.raises(ValueError, match="kind"):
        SpatialLoss(pos, nbs, kind="relative")
    with pytest.raises(ValueError, match="out of range"):
        SpatialLoss(pos[:10], nbs)
    assert "positions" not in loss.state_dict()
    small = SpatialLoss(pos, nbs, cache_mb=2.5 * 7 * 7 * 4 / 2**20)  # room for two cached neighbourhoods
    torch.testing.assert_close(small.loss_at(feats, idx), a)
    assert len(small._cache) == 2


def test_spatial_loss_decreases_when_optimised() -> None:
    """A few SGD steps on free responses lower SL_Rel: the loss gives a useful gradient."""
    pos, nbs = _layer(3, n_units=40, k=10, n_nb=8)
    loss = SpatialLoss(pos, nbs, neighborhoods_per_batch=8)
    x = torch.randn(32, 40, requires_grad=True)
    opt = torch.optim.SGD([x], lr=5.0)
    first = loss.loss_at(x, torch.arange(8)).item()
    for _ in range(30):
        opt.zero_grad()
        loss.loss_at(x, torch.arange(8)).backward()
        opt.step()
    assert loss.loss_at(x, torch.arange(8)).item() < first - 0.1


def test_projection_head_dims() -> None:
    head = ProjectionHead(64, 32, 16)
    assert head(torch.randn(3, 64)).shape == (3, 16)
    assert ProjectionHead(8, batch_norm=True)(torch.randn(4, 8)).shape == (4, 128)


def _nt_xent_reference(z1: torch.Tensor, z2: torch.Tensor, t: float) -> tuple[float, float]:
    z = F.normalize(torch.cat([z1, z2]), dim=1).double()
    n, b = len(z), len(z1)
    losses, hits = [], 0
    for i in range(n):
        pos = (i + b) % n
        sims = {j: float(z[i] @ z[j]) / t for j in range(n) if j != i}
        den = sum(np.exp(s) for s in sims.values())
        losses.append(-np.log(np.exp(sims[pos]) / den))
        hits += max(sims, key=sims.get) == pos
    return float(np.mean(losses)), hits / n


def test_nt_xent_matches_reference() -> None:
    torch.manual_seed(0)
    z1, z2 = torch.randn(6, 5), torch.randn(6, 5)
    z2[:3] = z1[:3] + 0.05 * torch.randn(3, 5)  # half of the pairs easy
    loss, top1 = nt_xent(z1, z2, temperature=0.1)
    ref_loss, ref_top1 = _nt_xent_reference(z1, z2, 0.1)
    assert float(loss) == pytest.approx(ref_loss, rel=1e-5)
    assert float(top1) == pytest.approx(ref_top1)
    assert 0 < ref_top1 < 1
    eye = torch.eye(4)
    assert float(nt_xent(eye, eye)[1]) == 1.0


def _moco(**kw) -> MoCo:
    torch.manual_seed(0)
    return MoCo(build_model("resnet18", width=0.125), dim=8, **kw)


def test_moco_queue_wraps_and_is_in_state_dict() -> None:
    moco = _moco(K=10)
    batches = [F.normalize(torch.randn(4, 8), dim=1) for _ in range(3)]
    for b in batches:
        moco.enqueue(b)
    assert int(moco.queue_ptr) == 2
    torch.testing.assert_close(moco.queue[:, 4:8], batches[1].T)
    torch.testing.assert_close(moco.queue[:, [8, 9, 0, 1]], batches[2].T)
    state = moco.state_dict()
    assert "queue" in state and int(state["queue_ptr"]) == 2
    with pytest.raises(ValueError, match="larger than the MoCo queue"):
        moco.enqueue(torch.randn(11, 8))


def test_moco_momentum_update() -> None:
    moco = _moco(m=0.9)
    k_before = [p.clone() for p in moco._params_k()]
    assert all(torch.equal(a, b) for a, b in zip(k_before, moco._params_q()))  # starts from the query weights
    with torch.no_grad():
        for p in moco._params_q():
            p.add_(torch.randn_like(p))
    moco.momentum_update()
    for old_k, q, k in zip(k_before, moco._params_q(), moco._params_k()):
        torch.testing.assert_close(k, 0.9 * old_k + 0.1 * q)
        assert not k.requires_grad


def test_moco_forward_loss_gradients_and_split_bn_keys() -> None:
    moco = _moco(K=16, m=0.99, T=0.2, bn_splits=2)
    x_q, x_k = torch.randn(4, 3, 16, 16), torch.randn(4, 3, 16, 16)
    # eval mode: shuffling and splitting must not change the keys
    moco.eval()
    plain = F.normalize(moco.head_k(moco.encoder_k.embed(x_k)), dim=1)
    torch.testing.assert_close(moco.keys(x_k), plain)
    # loss by hand (m=1 would freeze the key encoder; here check against the updated one)
    queue = moco.queue.clone()
    loss, top1 = moco(x_q, x_k)
    q = moco.query(x_q)
    k = F.normalize(moco.head_k(moco.encoder_k.embed(x_k)), dim=1)
    logits = torch.cat([(q * k).sum(1, keepdim=True), q @ queue], dim=1) / 0.2
    torch.testing.assert_close(loss, F.cross_entropy(logits, torch.zeros(4, dtype=torch.long)))
    torch.testing.assert_close(moco.queue[:, :4], k.T)
    assert int(moco.queue_ptr) == 4 and 0.0 <= float(top1) <= 1.0
    # train mode: each shuffled half of the keys gets its own BN statistics
    moco.train()
    perm = torch.randperm(4, generator=torch.Generator().manual_seed(5))
    keys = moco.keys(x_k, torch.Generator().manual_seed(5))
    with torch.no_grad():
        halves = [moco.head_k(moco.encoder_k.embed(x_k[perm[:2]])), moco.head_k(moco.encoder_k.embed(x_k[perm[2:]]))]
    expected = torch.empty(4, 8)
    expected[perm] = F.normalize(torch.cat(halves), dim=1)
    torch.testing.assert_close(keys, expected)
    whole = F.normalize(moco.head_k(moco.encoder_k.embed(x_k)), dim=1).detach()
    assert not torch.allclose(keys, whole, atol=1e-3)
    loss, _ = moco(x_q, x_k)
    loss.backward()
    assert moco.encoder_q.conv1.weight.grad is not None and moco.head_q.mlp[0].weight.grad is not None
    assert moco.encoder_k.conv1.weight.grad is None


def test_moco_rejects_plain_encoder() -> None:
    with pytest.raises(ValueError, match="embed"):
        MoCo(torch.nn.Linear(3, 3))


# --------------------------------------------------------------------------------------------- TopoLoss
def test_topo_loss_equals_the_topoloss_package():
    """Our TopoLoss against the reference implementation (the `topoloss` package, TopoNets) on conv and linear
    layers of several channel counts and blur factors."""
    topoloss = pytest.importorskip("topoloss")
    from tdann.losses import topo_loss

    torch.manual_seed(0)
    for layer, factor in ((torch.nn.Conv2d(8, 64, 3), 3.0), (torch.nn.Conv2d(4, 48, 3), 2.0),
                          (torch.nn.Linear(20, 36), 3.0), (torch.nn.Conv2d(8, 128, 1), 4.0)):
        model = torch.nn.Sequential(layer)
        ref = topoloss.TopoLoss(losses=[topoloss.LaplacianPyramid(layer_name="0", factor_h=factor,
                                                                   factor_w=factor)]).compute(model)
        assert float(topo_loss(layer.weight, factor)) == pytest.approx(float(ref), abs=1e-6)


def test_topo_loss_is_zero_for_smooth_weights_and_its_gradient_smooths():
    from tdann.losses import channel_grid, topo_loss

    assert channel_grid(64) == (8, 8) and channel_grid(48) == (6, 8) and channel_grid(7) == (1, 7)
    rows, cols = 8, 8
    yy, xx = torch.meshgrid(torch.linspace(0, 1, rows), torch.linspace(0, 1, cols), indexing="ij")
    smooth = torch.stack([torch.ones(rows, cols), 0.01 * xx, 0.01 * yy], -1).reshape(64, 3)
    assert float(topo_loss(smooth, 3.0)) < 1e-3
    w = torch.randn(64, 27, requires_grad=True)
    before = float(topo_loss(w, 3.0))
    opt = torch.optim.Adam([w], lr=0.1)
    for _ in range(100):
        opt.zero_grad()
        topo_loss(w, 3.0).backward()
        opt.step()
    assert float(topo_loss(w, 3.0)) < 0.5 * before
    with pytest.raises(ValueError, match="factor 9.0 must be in"):
        topo_loss(torch.randn(64, 3), 9.0)


def test_topo_weight_loss_reads_the_block_output_conv():
    from tdann import models
    from tdann.losses import TopoWeightLoss, output_conv, topo_loss

    net = models.build_model("resnet18", width=0.5)
    block = net.get_submodule("layer2.0")
    assert output_conv(block) is block.conv2  # not the shortcut's 1x1 conv
    video = models.build_model("r3d_18", width=0.25).get_submodule("layer2.0")
    assert output_conv(video) is video.conv2[0]
    sl = TopoWeightLoss(block, 3.0)
    assert float(sl(torch.randn(2, 10))) == pytest.approx(float(topo_loss(block.conv2.weight, 3.0)))
    assert "conv" not in dict(sl.named_modules())  # the encoder keeps owning the conv
    sl.loss_at().backward()
    assert block.conv2.weight.grad is not None and block.conv1.weight.grad is None
