"""A repo's config files decide what it is, as sentence-transformers would read them."""

from __future__ import annotations

from typing import Any

import pytest

from domain.errors import ArchitectureNotSupported, ModelUnavailable
from domain.families import ARCHITECTURES
from domain.models import Family, ModelSpec, PoolingMode
from domain.repo_configs import describe_repo, pooling_modes

REPO = "BAAI/bge-small-en-v1.5"
BERT = {"architectures": ["BertModel"], "model_type": "bert", "hidden_size": 384}
ST_MODULES = [
    {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
    {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    {
        "idx": 2,
        "name": "2",
        "path": "2_Normalize",
        "type": "sentence_transformers.models.Normalize",
    },
]
LEGACY_CLS = {"word_embedding_dimension": 384, "pooling_mode_cls_token": True}


def _described(configs: dict[str, Any], revision: str = "main") -> ModelSpec:
    spec = describe_repo(REPO, REPO, revision, configs)
    assert isinstance(spec, ModelSpec), spec
    return spec


def test_a_sentence_transformers_bert_repo_is_read_as_its_files_say() -> None:
    """bge-small-en-v1.5's layout: BertModel, CLS pooling, max_seq_length 512."""
    spec = _described(
        {
            "config.json": BERT | {"max_position_embeddings": 512},
            "modules.json": ST_MODULES,
            "1_Pooling/config.json": LEGACY_CLS,
            "sentence_bert_config.json": {"max_seq_length": 512, "do_lower_case": True},
        },
        revision="v1",
    )
    assert spec == ModelSpec(REPO, REPO, Family.BERT, 384, 512, PoolingMode.CLS, revision="v1")


def test_a_plain_transformers_repo_is_mean_pooled_up_to_its_positions() -> None:
    """No modules.json: mean pooling, as sentence-transformers gives such a repo."""
    spec = _described({"config.json": BERT | {"max_position_embeddings": 1024}})
    assert (spec.pooling, spec.max_tokens, spec.dimensions) == (PoolingMode.MEAN, 1024, 384)


def test_roberta_positions_start_after_the_padding_row() -> None:
    """514 rows with pad_token_id 1 hold 512 tokens; the tokenizer's larger limit is capped."""
    config = {
        "architectures": ["XLMRobertaModel"],
        "hidden_size": 1024,
        "max_position_embeddings": 8194,
        "pad_token_id": 1,
    }
    spec = _described(
        {"config.json": config, "tokenizer_config.json": {"model_max_length": 10**30}}
    )
    assert (spec.family, spec.max_tokens) == (Family.XLM_ROBERTA, 8192)


def test_pooling_modes_concatenate_and_a_dense_module_sets_the_width() -> None:
    """Two modes double the width; a Dense module after them decides it instead."""
    modules = [*ST_MODULES[:2], {"path": "2_Dense", "type": "sentence_transformers.models.Dense"}]
    pooling = {"pooling_mode": ["mean", "max"]}
    two_modes = {
        "config.json": BERT,
        "modules.json": ST_MODULES[:2],
        "1_Pooling/config.json": pooling,
    }
    assert _described(two_modes).dimensions == 768
    dense = two_modes | {"modules.json": modules, "2_Dense/config.json": {"out_features": 256}}
    assert _described(dense).dimensions == 256


@pytest.mark.parametrize(
    "config",
    [
        {"architectures": ["JinaBertForMaskedLM"], "model_type": "bert", "auto_map": {}},
        {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 1024},
    ],
)
def test_an_architecture_we_do_not_run_is_refused_by_name(config: dict[str, Any]) -> None:
    """The refusal names the architecture and lists the ones we run."""
    refused = describe_repo(REPO, REPO, "main", {"config.json": config})
    assert refused == ArchitectureNotSupported(
        REPO, config["architectures"][0], tuple(ARCHITECTURES)
    )
    assert "BertModel" in refused.message


def test_custom_code_runs_only_as_an_architecture_we_wrote() -> None:
    """auto_map beside BertModel is read as our BERT; beside a bare model_type, refused."""
    custom = BERT | {"auto_map": {"AutoModel": "modeling.CustomBert"}}
    assert _described({"config.json": custom}).family is Family.BERT
    no_architecture = {"model_type": "bert", "hidden_size": 8, "auto_map": {"AutoModel": "x.Y"}}
    refused = describe_repo(REPO, REPO, "main", {"config.json": no_architecture})
    assert isinstance(refused, ArchitectureNotSupported)


def test_model_type_names_the_family_when_architectures_is_absent() -> None:
    spec = _described({"config.json": {"model_type": "roberta", "hidden_size": 16}})
    assert (spec.family, spec.max_tokens) == (Family.ROBERTA, 512 - 2)


def test_no_config_at_all_is_refused_without_an_architecture() -> None:
    refused = describe_repo(REPO, REPO, "main", {})
    assert isinstance(refused, ArchitectureNotSupported)
    assert refused.architecture == ""


def test_values_of_the_wrong_type_count_as_absent() -> None:
    """A damaged config never raises: a string where a number belongs is no number."""
    spec = _described(
        {
            "config.json": BERT | {"max_position_embeddings": "many"},
            "modules.json": {"not": "a list"},
            "sentence_bert_config.json": {"max_seq_length": True},
        }
    )
    assert (spec.max_tokens, spec.pooling) == (512, PoolingMode.MEAN)
    assert isinstance(
        describe_repo(REPO, REPO, "main", {"config.json": {"architectures": ["BertModel"]}}),
        ModelUnavailable,
    )


def test_a_model2vec_repo_is_the_model2vec_family_by_its_config() -> None:
    """config.json as model2vec's distill() writes it: StaticModel, model_type model2vec, the
    width as hidden_dim; no max_length is model2vec's 512, null is no limit."""
    config = {"architectures": ["StaticModel"], "model_type": "model2vec", "hidden_dim": 256}
    modules = [
        {"idx": 0, "name": "0", "path": ".", "type": "sentence_transformers.models.StaticEmbedding"}
    ]
    spec = _described({"config.json": config, "modules.json": modules})
    assert spec == ModelSpec(REPO, REPO, Family.MODEL2VEC, 256, 512, PoolingMode.MEAN)
    spec = _described(
        {"config.json": {"model_type": "model2vec", "hidden_dim": 8, "max_length": None}}
    )
    assert (spec.family, spec.max_tokens) == (Family.MODEL2VEC, None)


@pytest.mark.parametrize(
    ("config", "modes"),
    [
        ({"pooling_mode": "cls"}, (PoolingMode.CLS,)),
        ({"pooling_mode": ["mean", "max"]}, (PoolingMode.MEAN, PoolingMode.MAX)),
        # the legacy keys concatenate in sentence-transformers' fixed order, not the file's
        (
            {"pooling_mode_mean_tokens": True, "pooling_mode_cls_token": True},
            (PoolingMode.CLS, PoolingMode.MEAN),
        ),
    ],
)
def test_pooling_modes_are_read_as_sentence_transformers_reads_them(
    config: dict[str, Any], modes: tuple[PoolingMode, ...]
) -> None:
    assert pooling_modes(config) == modes


@pytest.mark.parametrize(
    "config",
    [{}, {"pooling_mode_cls_token": False}, {"pooling_mode": "median"}, {"pooling_mode": []}],
)
def test_a_pooling_config_with_no_mode_we_run_is_refused_at_load(config: dict[str, Any]) -> None:
    """The load refuses it with the reason; the listing (describe_repo) shows mean instead."""
    with pytest.raises(ValueError, match="pooling"):
        pooling_modes(config)
    spec = _described(
        {"config.json": BERT, "modules.json": ST_MODULES, "1_Pooling/config.json": config}
    )
    assert spec.pooling is PoolingMode.MEAN
