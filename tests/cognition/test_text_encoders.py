import pytest
import torch

from medseg_r.cognition import HashedNgramEncoder, build_text_encoder


def test_hashed_encoder_is_deterministic_and_handles_empty():
    enc = HashedNgramEncoder(dim=16, buckets=256)
    out = enc(["ground-glass opacity", "", "ground-glass opacity"])
    assert out.shape == (3, 16)
    assert torch.equal(out[0], out[2]) and torch.count_nonzero(out[1]) == 0
    # the documented bag: mean of the embeddings of the phrase's hashed word and character n-grams
    ids = enc.ids("ground-glass opacity")
    assert len(ids) == 3 + 2 + (6 + 5 + 7)  # words, bigrams, character trigrams of #ground# #glass# #opacity#
    assert torch.allclose(out[0], enc.bag.weight[ids].mean(0), atol=1e-6)
    assert enc.ids("Right upper lobe") == HashedNgramEncoder(dim=4, buckets=256).ids("Right upper lobe")


def test_hashed_encoder_bad_sizes():
    with pytest.raises(ValueError):
        HashedNgramEncoder(dim=0)


def test_hf_encoder_loads_a_local_model_offline(tmp_path, monkeypatch):
    transformers = pytest.importorskip("transformers")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "round", "nodule", "right", "upper", "lobe", "no"]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    transformers.BertTokenizerFast(vocab_file=str(tmp_path / "vocab.txt")).save_pretrained(tmp_path)
    config = transformers.BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=64, max_position_embeddings=64)
    transformers.BertModel(config).save_pretrained(tmp_path)
    enc = build_text_encoder(str(tmp_path))
    assert enc.dim == 32
    out = enc(["round nodule right upper lobe", "", "no nodule"])
    assert out.shape == (3, 32) and torch.count_nonzero(out[1]) == 0
    assert not torch.allclose(out[0], out[2])
    from medseg_r import build_model

    model = build_model("sam_tiny", text_encoder=str(tmp_path))
    assert not any(p.requires_grad for p in model.prior_encoder.text_encoder.parameters())
    # the phrases reach the prior tokens through the local model: other weights there, other tokens
    from medseg_r import parse_report

    report = [parse_report("round nodule, right upper lobe")]
    a = model.prior_encoder(report)["tokens"]
    with torch.no_grad():
        model.prior_encoder.text_encoder.model.embeddings.word_embeddings.weight.mul_(2.0)
    assert not torch.allclose(a, model.prior_encoder(report)["tokens"])


def test_hf_encoder_missing_folder_is_a_value_error(tmp_path):
    pytest.importorskip("transformers")
    with pytest.raises(ValueError, match="neither 'hashed' .* nor a folder"):
        build_text_encoder(str(tmp_path / "nowhere"))
    # an empty folder failed deep in transformers ("Couldn't instantiate the backend tokenizer")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no Hugging Face model .* or 'hashed'"):
        build_text_encoder(str(tmp_path / "empty"))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="could not be loaded as a Hugging Face model"):
        build_text_encoder(str(tmp_path / "broken"))
