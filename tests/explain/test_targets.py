"""Targets against independent computations: each written out by hand, not through the library."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from explain_helpers import tiny_bot

from workbench.explain import ExplainError
from workbench.explain.targets import EmbeddingSimilarity, GroupEmbedding


def test_embedding_similarity_metrics_are_what_they_say():
    torch.manual_seed(0)
    e, ref = torch.randn(4, 6), torch.randn(6)
    cos = EmbeddingSimilarity(ref, metric="cosine")(e)
    by_hand = (e @ ref) / (e.norm(dim=1) * ref.norm())
    torch.testing.assert_close(cos, by_hand)
    euc = EmbeddingSimilarity(ref, metric="euclidean")(e)
    torch.testing.assert_close(euc, -((e - ref) ** 2).sum(1).sqrt())
    assert not torch.allclose(cos, euc)


def test_embedding_similarity_defaults_to_the_models_ranking_metric():
    model = tiny_bot()
    torch.manual_seed(1)
    e, ref = torch.randn(3, 128), torch.randn(128)
    assert model.ranking_metric == "cosine"
    torch.testing.assert_close(
        EmbeddingSimilarity(ref)(e, model), F.cosine_similarity(e, ref[None], dim=1)
    )
    model.config.ranking_metric = "euclidean"
    torch.testing.assert_close(EmbeddingSimilarity(ref)(e, model), -(e - ref).norm(dim=1))
    with pytest.raises(ExplainError, match="metric"):
        EmbeddingSimilarity(ref, metric="manhattan")


@pytest.mark.parametrize("groups", [2, 3, 4])
def test_group_embedding_scores_its_own_group(groups):
    torch.manual_seed(2)
    e = torch.randn(2, 10)
    size = 10 // groups
    for index in range(groups):
        stop = 10 if index == groups - 1 else (index + 1) * size  # the last takes the rest
        part = e[:, index * size : stop]
        torch.testing.assert_close(
            GroupEmbedding(index, groups)(e), 0.5 * (part**2).sum(1), msg=f"group {index}"
        )
        ref = torch.randn(10)
        torch.testing.assert_close(
            GroupEmbedding(index, groups, ref)(e),
            -((part - ref[index * size : stop]) ** 2).sum(1).sqrt(),
        )
