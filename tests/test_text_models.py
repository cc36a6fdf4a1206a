"""bAbI readers of every family: shapes, options, errors, and that each one learns a question-dependent toy task."""

from __future__ import annotations

import pytest
import torch

from liafnet.data.spec import DataSpec
from liafnet.layers import LIAFLSTM, DenseLIAF, DenseLIF, RecurrentLIAF
from liafnet.models import build_model
from liafnet.models.text import BabiReader, TorchRNN, build_text_model

SPEC = DataSpec(kind="text", num_classes=12, vocab_size=12, story_len=9, query_len=3)
FAMILIES = ("liaf", "lif", "lstm", "gru")


@pytest.fixture(autouse=True)
def _one_thread():
    """These models are tiny: with several threads on a busy machine they run many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tokens(length: int, batch: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(1, SPEC.vocab_size, (length, batch), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("merge", ["sum_repeat", "concat"])
def test_output_is_one_step_of_vocab_logits(family, merge):
    model = build_text_model(family, SPEC, text_merge=merge, text_hidden=20, text_embed_dim=8)
    out = model(tokens(9, 5), tokens(3, 5))
    assert out.shape == (1, 5, SPEC.vocab_size)
    # Stories of another length in another batch: the reader has no fixed sequence length.
    assert model(tokens(17, 2), tokens(4, 2)).shape == (1, 2, SPEC.vocab_size)
    out.sum().backward()
    assert model.story_embedding.weight.grad.abs().sum() > 0
    assert model.question_embedding.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("family, encoder, layer", [
    ("lstm", None, TorchRNN), ("gru", None, TorchRNN), ("liaf", "rnn", RecurrentLIAF),
    ("lif", "rnn", RecurrentLIAF), ("liaf", "dense", DenseLIAF), ("lif", "dense", DenseLIF),
    ("liaf", "liaf_lstm", LIAFLSTM), ("liaf", "liaf_lstm_rec", LIAFLSTM),
])
def test_encoders_of_each_family(family, encoder, layer):
    # Only the LIAF-RNN takes the loop-gain cap (the liaf/lif default); the other encoders say none.
    options = {} if encoder is None else {"text_encoder": encoder,
                                          "text_recurrent_norm": "gain" if encoder == "rnn" else "none"}
    model = build_text_model(family, SPEC, **options)
    assert isinstance(model.story_encoder, layer) and isinstance(model.question_encoder, layer)
    if family == "lif":
        assert model.story_encoder.neuron.spiking
        spikes = model.story_encoder(torch.randn(6, 3, 50))
        assert set(spikes.unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("merge", ["sum_repeat", "concat"])
def test_liaf_lstm_encoders_are_the_authors_cell_and_the_labelled_extension(merge):
    authors = build_text_model("liaf", SPEC, text_recurrent_norm="none", text_encoder="liaf_lstm", text_merge=merge)
    extension = build_text_model("liaf", SPEC, text_recurrent_norm="none", text_encoder="liaf_lstm_rec", text_merge=merge,
                                 text_lstm_gate="sigmoid", text_lstm_init="keras")
    for encoder in (authors.story_encoder, authors.question_encoder):
        assert not encoder.recurrent_gates and encoder.gate == "relu"  # the authors' code default
        assert encoder.neuron.params.threshold == 0.5 and not encoder.neuron.params.detach_reset
    for encoder in (extension.story_encoder, extension.question_encoder):
        assert encoder.recurrent_gates and encoder.gate == "sigmoid"
        assert "liafnet extension" in repr(encoder)
    out = extension(tokens(9, 3), tokens(3, 3))
    out.sum().backward()
    assert extension.story_encoder.recurrent.weight.grad.abs().sum() > 0


def test_liaf_lstm_options_apply_to_the_liaf_lstm_encoders_only():
    with pytest.raises(ValueError, match="use it with model=liaf, not lif"):
        build_text_model("lif", SPEC, text_recurrent_norm="none", text_encoder="liaf_lstm")
    with pytest.raises(ValueError, match=r"model\.text_lstm_gate applies to the LIAF-LSTM encoders"):
        build_text_model("liaf", SPEC, text_encoder="rnn", text_lstm_gate="sigmoid")  # the default gain cap
    with pytest.raises(ValueError, match=r"model\.text_lstm_init applies to the LIAF-LSTM encoders"):
        build_text_model("liaf", SPEC, text_recurrent_norm="none", text_encoder="dense", text_lstm_init="keras")
    with pytest.raises(ValueError, match=r"model\.text_lstm_init is not an option of GRUModel"):
        build_text_model("gru", SPEC, text_lstm_init="keras")
    with pytest.raises(ValueError, match=r"model\.text_neuron does not apply to model\.text_encoder=liaf_lstm"):
        build_text_model("liaf", SPEC, text_recurrent_norm="none", text_encoder="liaf_lstm", text_neuron={"threshold": 9.0})
    with pytest.raises(ValueError, match=r"model\.text_lstm_gate"):
        build_text_model("liaf", SPEC, text_recurrent_norm="none", text_encoder="liaf_lstm", text_lstm_gate="tanh")
    # The shared LIAF-Net neuron keys do not reach the cell's gate neurons (its own constants).
    model = build_text_model("liaf", SPEC, text_recurrent_norm="none", text_encoder="liaf_lstm", threshold=0.3)
    assert model.story_encoder.neuron.params.threshold == 0.5


def test_sizes_follow_the_keras_recipe():
    model = build_text_model("lstm", SPEC, text_init="keras")  # LSTM/GRU default to torch init (docs/babi.md)
    assert model.story_embedding.embedding_dim == model.question_embedding.embedding_dim == 50
    assert model.question_encoder.rnn.hidden_size == 50 and model.story_encoder.rnn.hidden_size == 50
    assert model.dropout.p == pytest.approx(0.3)
    assert model.classifier.out_features == SPEC.vocab_size
    # Keras init: the LSTM forget-gate bias starts at 1, the padding embedding at 0.
    assert torch.all(model.story_encoder.rnn.bias_ih_l0[50:100] == 1)
    assert torch.all(model.story_embedding.weight[0] == 0)
    concat = build_text_model("gru", SPEC, text_merge="concat", text_hidden=100)
    assert concat.classifier.in_features == 200


def test_keras_init_treats_the_liaf_rnn_like_the_other_recurrent_layers():
    layer = build_text_model("liaf", SPEC, text_hidden=40).story_encoder
    recurrent = layer.recurrent.weight.detach()
    assert torch.allclose(recurrent @ recurrent.T, torch.eye(40), atol=1e-5)
    assert torch.all(layer.input.bias == 0)
    torch_layer = build_text_model("liaf", SPEC, text_hidden=40, text_init="torch").story_encoder
    assert not torch.allclose(torch_layer.recurrent.weight @ torch_layer.recurrent.weight.T, torch.eye(40), atol=1e-2)


@pytest.mark.parametrize("family", ["liaf", "lif"])
def test_gain_recurrent_norm_caps_the_liaf_rnn_loop_gain_at_one(family):
    # Seeded: with some initial weights the uncapped layer fires and resets often enough to stay finite.
    torch.manual_seed(0)
    model = build_text_model(family, SPEC, text_hidden=30, text_recurrent_norm="gain")
    layer = model.story_encoder
    alpha = layer.neuron.alpha()
    # Keras init: W_v orthogonal, so the loop gain alpha * 1 < 1 and the weight is used as is.
    torch.testing.assert_close(layer.recurrent_weight(alpha), layer.recurrent.weight)
    with torch.no_grad():
        layer.recurrent.weight.mul_(3.0)  # what training can do to an unconstrained recurrent weight
    gain = alpha * torch.linalg.matrix_norm(layer.recurrent_weight(alpha), ord=2)
    assert gain.item() == pytest.approx(1.0, abs=1e-5)
    # Over a long input the capped layer stays bounded where the uncapped one overflows.
    unbounded = build_text_model(family, SPEC, text_hidden=30, text_recurrent_norm="none").story_encoder
    unbounded.load_state_dict(layer.state_dict())
    x = -torch.ones(3000, 1, layer.input.in_features)
    with torch.no_grad():
        for module in (layer, unbounded):
            module.input.weight.fill_(0.05)
    assert torch.isfinite(layer(x)).all()
    if family == "liaf":
        assert not torch.isfinite(unbounded(x)).all()


def test_pre_padding_leaves_the_last_step_to_the_real_tokens():
    """With padding_idx=0 the padded steps carry only the question summary; a story that is
    pre-padded still ends on its own last token, so short stories in a long batch still work."""
    model = build_text_model("gru", SPEC).eval()
    story, question = tokens(5, 1), tokens(3, 1)
    padded = torch.cat([torch.zeros(4, 1, dtype=torch.long), story])
    assert model(padded, question).argmax(-1).shape == (1, 1)
    assert torch.all(model.story_embedding(padded[:4]) == 0)


@pytest.mark.parametrize("options, key", [
    ({"text_merge": "mul"}, "model.text_merge"), ({"text_hidden": 0}, "model.text_hidden"),
    ({"text_dropout": 1.0}, "model.text_dropout"), ({"text_init": "xavier"}, "model.text_init"),
    ({"text_encoder": "lstm"}, "model.text_encoder"), ({"text_hiden": 5}, "model.text_hiden"),
    ({"act": "tanh"}, "model.act"), ({"text_recurrent_norm": "spectral"}, "model.text_recurrent_norm"),
])
def test_bad_options_name_the_key(options, key):
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        build_text_model("liaf", SPEC, **options)


def test_option_scope_per_family():
    with pytest.raises(ValueError, match="model.threshold"):
        build_text_model("lstm", SPEC, threshold=0.3)  # neuron keys are for liaf/lif only
    with pytest.raises(ValueError, match="model.act"):
        build_text_model("lif", SPEC, act="relu")  # LIF outputs spikes: no analog activation
    with pytest.raises(ValueError, match="model.text_recurrent_norm is not an option of GRUModel"):
        build_text_model("gru", SPEC, text_recurrent_norm="gain")
    with pytest.raises(ValueError, match=r"model\.text_recurrent_norm applies to"):
        build_text_model("liaf", SPEC, text_encoder="dense", text_recurrent_norm="gain")
    model = build_text_model("liaf", SPEC, threshold=0.3, act="relu", dropout=0.0)
    assert model.story_encoder.neuron.params.threshold == 0.3
    assert model.dropout.p == pytest.approx(0.3)  # the vision dropout key does not touch the reader
    with pytest.raises(ValueError, match=r"model\.dropout"):  # ... and may not be set for text data
        build_text_model("liaf", SPEC, dropout=0.5)


def test_text_neuron_overrides_the_shared_neuron_keys_for_text_only():
    model = build_text_model("liaf", SPEC, decay_d0=0.5, threshold=0.4, text_neuron={"decay_d0": 3.0})
    neuron = model.story_encoder.neuron
    assert neuron.decay_logit.item() == pytest.approx(3.0) and neuron.params.threshold == pytest.approx(0.4)
    with pytest.raises(ValueError, match=r"model\.text_neuron\.act"):
        build_text_model("lif", SPEC, text_neuron={"act": "relu"})
    with pytest.raises(ValueError, match=r"model\.text_neuron is not an option of GRUModel"):
        build_text_model("gru", SPEC, text_neuron={"decay_d0": 1.0})


def test_wrong_spec_and_family():
    events = DataSpec(kind="events", num_classes=3, time_steps=2, channels=2, height=4, width=4)
    with pytest.raises(ValueError, match="text DataSpec"):
        build_text_model("lstm", events)
    with pytest.raises(ValueError, match="model.family"):
        build_text_model("conv3d", SPEC)


def test_build_model_dispatches_text_specs():
    assert isinstance(build_model("gru", SPEC, text_hidden=16), BabiReader)


@pytest.mark.parametrize("family, options", [
    *((family, {}) for family in FAMILIES),
    ("liaf", {"text_encoder": "liaf_lstm_rec", "text_lstm_gate": "sigmoid", "text_recurrent_norm": "none"}),
])
def test_each_family_learns_a_question_dependent_lookup(family, options):
    """Story: 4 random words; question: token 1 asks for the first word, token 2 for the last.
    Needs both the question and memory over the story; chance is about 1/9."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(1)
    story = torch.randint(3, SPEC.vocab_size, (4, 128), generator=generator)
    which = torch.randint(1, 3, (128,), generator=generator)
    answer = torch.where(which == 1, story[0], story[-1])
    model = build_text_model(family, SPEC, text_hidden=24, text_embed_dim=16, text_dropout=0.0, **options)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(80):
        loss = torch.nn.functional.cross_entropy(model(story, which[None])[-1], answer)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    accuracy = (model.eval()(story, which[None])[-1].argmax(-1) == answer).float().mean().item()
    assert accuracy > 0.8, f"{family} reached only {accuracy:.2f}"
