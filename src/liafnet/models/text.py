"""bAbI question-answering networks: the Keras ``babi_rnn`` recipe with a swappable recurrent encoder.

``sum_repeat`` (default; the ``keras1`` setting: the 2016 Keras example, whose QA1/QA2 rows of the
reference table came from it)::

    story    -> Embedding(E) -> Dropout
    question -> Embedding(E) -> Dropout -> RNN(E) -> last step, repeated over the story steps
    (story + repeated question) -> RNN(H) -> last step -> Dropout -> Dense(vocab)

``concat`` (the ``two_tower`` setting: the 2015 and 2018 Keras example, and the authors' framework's
bAbI network): story and question each go Embedding(E) -> Dropout -> RNN(H) -> last step; the two
are concatenated -> Dropout -> Dense(vocab). With liaf/lif and ``text_encoder=dense`` each tower is
one DenseLIAF/DenseLIF layer read at the last word step (the framework's FC-LIF model).

The RNN is ``nn.LSTM``/``nn.GRU`` or, for liaf/lif, one of :data:`liafnet.models.options.TEXT_ENCODERS`; ``liaf_lstm_rec`` is a
liafnet extension, not found in the authors' code.

Time runs over word steps: a story of ``Ls`` tokens is ``Ls`` steps of every recurrent encoder,
the LIAF/LIF ones included. Inputs are pre-padded ``[L, B]`` token ids, so the last step is every
sequence's last real token. Output: logits ``[1, B, vocab]``.
"""

from __future__ import annotations

import torch
from torch import nn

from liafnet.data.spec import DataSpec
from liafnet.layers import LIAFLSTM, DenseLIAF, DenseLIF, RecurrentLIAF, liaf_lstm_neuron
from liafnet.models.options import LSTM_CELL_ENCODERS, model_options
from liafnet.neurons import NeuronConfig, neuron_config, neuron_options


class TorchRNN(nn.Module):
    """``nn.LSTM``/``nn.GRU`` returning only the output sequence ``[L, B, H]``.

    ``init="keras"`` uses the Keras defaults of the reference recipe: Glorot-uniform input weights,
    orthogonal recurrent weights, zero biases and (LSTM) forget-gate bias 1.
    """

    def __init__(self, kind: str, input_size: int, hidden: int, init: str):
        super().__init__()
        self.rnn = (nn.LSTM if kind == "lstm" else nn.GRU)(input_size, hidden)
        if init == "keras":
            gates = 4 if kind == "lstm" else 3
            for name, param in self.rnn.named_parameters():
                if name.startswith("weight_ih"):
                    for chunk in param.data.chunk(gates):
                        nn.init.xavier_uniform_(chunk)
                elif name.startswith("weight_hh"):
                    for chunk in param.data.chunk(gates):
                        nn.init.orthogonal_(chunk)
                else:
                    nn.init.zeros_(param)
            if kind == "lstm":  # gate order i, f, g, o; one of the two bias vectors carries the 1
                self.rnn.bias_ih_l0.data[hidden:2 * hidden] = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(x)[0]


def make_encoder(family: str, input_size: int, hidden: int, init: str, encoder: str,
                 neuron: NeuronConfig | None, recurrent_norm: str = "none", lstm_gate: str = "relu",
                 lstm_init: str = "authors") -> nn.Module:
    """A recurrent layer ``[L, B, input_size] -> [L, B, hidden]`` of the given family.

    LIAF/LIF: ``encoder="rnn"`` is the LIAF-RNN (recurrent weights on the membrane potential),
    ``"dense"`` a DenseLIAF/DenseLIF layer whose only memory is the leaky membrane (the authors'
    framework's FC-LIF tower), ``"liaf_lstm"`` the authors' 2020 LIAF-LSTM cell
    (:class:`liafnet.layers.LIAFLSTM`, gate function ``lstm_gate``, initialisation ``lstm_init``) and
    ``"liaf_lstm_rec"`` the same cell with the previous output fed to its gate neurons, a liafnet
    extension not found in the authors' code. None uses batch norm: statistics over a batch of padded
    stories of varying length would mix padding in. ``init="keras"`` initialises the RNN and dense
    layers alike: Glorot-uniform input weights, orthogonal recurrent weights, zero biases.
    ``recurrent_norm="gain"`` (LIAF-RNN only) caps the membrane loop gain at 1 (see
    :class:`liafnet.layers.RecurrentLIAF`).
    """
    if family in ("lstm", "gru"):
        return TorchRNN(family, input_size, hidden, init)
    if encoder == "rnn":
        return RecurrentLIAF(input_size, hidden, neuron, recurrent_norm=recurrent_norm,
                             keras_init=init == "keras")
    if encoder in LSTM_CELL_ENCODERS:
        return LIAFLSTM(input_size, hidden, neuron, gate=lstm_gate, recurrent_gates=encoder == "liaf_lstm_rec",
                        init=lstm_init)
    layer = (DenseLIF if family == "lif" else DenseLIAF)(input_size, hidden, neuron=neuron, norm="none")
    if init == "keras":
        nn.init.xavier_uniform_(layer.linear.weight)
        nn.init.zeros_(layer.linear.bias)
    return layer


class BabiReader(nn.Module):
    """Story/question reader of the Keras ``babi_rnn`` recipe (see the module docstring)."""

    def __init__(self, family: str, vocab_size: int, embed_dim: int = 50, hidden: int = 50,
                 dropout: float = 0.3, merge: str = "sum_repeat", init: str = "keras", encoder: str = "rnn",
                 neuron: NeuronConfig | None = None, recurrent_norm: str = "none", lstm_gate: str = "relu",
                 lstm_init: str = "authors"):
        super().__init__()
        self.merge = merge
        self.story_embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.question_embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.dropout = nn.Dropout(dropout)
        # sum_repeat adds the question summary to every story embedding, so it has the embedding size.
        question_size = embed_dim if merge == "sum_repeat" else hidden
        cell = {"recurrent_norm": recurrent_norm, "lstm_gate": lstm_gate, "lstm_init": lstm_init}
        self.question_encoder = make_encoder(family, embed_dim, question_size, init, encoder, neuron, **cell)
        self.story_encoder = make_encoder(family, embed_dim, hidden, init, encoder, neuron, **cell)
        features = hidden if merge == "sum_repeat" else hidden + question_size
        self.classifier = nn.Linear(features, vocab_size)
        if init == "keras":
            for embedding in (self.story_embedding, self.question_embedding):
                nn.init.uniform_(embedding.weight, -0.05, 0.05)
                embedding.weight.data[0] = 0.0
            nn.init.xavier_uniform_(self.classifier.weight)
            nn.init.zeros_(self.classifier.bias)

    def forward(self, story: torch.Tensor, question: torch.Tensor) -> torch.Tensor:
        """``story [Ls, B]``, ``question [Lq, B]`` token ids -> logits ``[1, B, vocab]``."""
        story_x = self.dropout(self.story_embedding(story))
        question_x = self.dropout(self.question_embedding(question))
        question_summary = self.question_encoder(question_x)[-1]  # [B, question_size]
        if self.merge == "sum_repeat":
            features = self.story_encoder(story_x + question_summary.unsqueeze(0))[-1]
        else:
            features = torch.cat([self.story_encoder(story_x)[-1], question_summary], dim=-1)
        return self.classifier(self.dropout(features)).unsqueeze(0)


def build_text_model(family: str, spec: DataSpec, **options) -> BabiReader:
    """The bAbI reader for ``family`` in ``liaf lif lstm gru``.

    ``options`` are flat model-config keys, checked by :func:`liafnet.models.options.model_options`
    (the ``text_*`` keys, and for liaf/lif the neuron keys shared with the vision networks;
    ``text_neuron``, a mapping of neuron keys, overrides those for the text reader alone, except for
    the LIAF-LSTM encoders, whose gate neurons keep the cell's own constants). Keys that size only
    the event-frame networks must keep their defaults. Raises ``ValueError`` naming ``model.<key>``.
    """
    if spec.kind != "text" or spec.vocab_size < 2:
        raise ValueError(f"bAbI models need a text DataSpec with a vocabulary, got kind={spec.kind!r}, "
                         f"vocab_size={spec.vocab_size}")
    o = model_options(family, options, "text").to_dict()
    spiking_neurons = family in ("liaf", "lif")
    recurrent_norm = o.get("text_recurrent_norm", "none")
    # The dense encoder has no recurrent weight: asking for its loop-gain cap is a mistake.
    if spiking_neurons and o["text_encoder"] != "rnn" and options.get("text_recurrent_norm", "none") != "none":
        raise ValueError("model.text_recurrent_norm applies to the LIAF-RNN encoder (text_encoder=rnn) only; "
                         f"set model.text_recurrent_norm=none with text_encoder={o['text_encoder']}")
    encoder = o.get("text_encoder", "rnn")
    lstm_cell = encoder in LSTM_CELL_ENCODERS
    if lstm_cell and family != "liaf":
        raise ValueError(f"model.text_encoder={encoder} is a LIAF cell (analog gates); use it with "
                         f"model=liaf, not {family}")
    if lstm_cell and o["text_neuron"]:
        raise ValueError(f"model.text_neuron does not apply to model.text_encoder={encoder}: the LIAF-LSTM "
                         "gate neurons keep the cell's own constants (liafnet.layers.liaf_lstm_neuron)")
    for key, default in (("text_lstm_gate", "relu"), ("text_lstm_init", "authors")):
        if o.get(key, default) != default and not lstm_cell:
            raise ValueError(f"model.{key} applies to the LIAF-LSTM encoders (model=liaf "
                             f"model.text_encoder={' or '.join(LSTM_CELL_ENCODERS)}) only")
    neuron = None
    if lstm_cell:
        # The cell's own constants (decay 0.3 fixed, reset gradient through the surrogate), not the
        # shared LIAF-Net neuron keys of the model config.
        neuron = liaf_lstm_neuron()
    elif spiking_neurons:
        keys = neuron_options(family == "lif").keys()
        neuron = neuron_config(spiking=family == "lif", **{**{k: o[k] for k in keys}, **o["text_neuron"]})
    return BabiReader(family, spec.vocab_size, embed_dim=o["text_embed_dim"], hidden=o["text_hidden"],
                      dropout=o["text_dropout"], merge=o["text_merge"], init=o["text_init"],
                      encoder=encoder, neuron=neuron, recurrent_norm=recurrent_norm,
                      lstm_gate=o.get("text_lstm_gate", "relu"), lstm_init=o.get("text_lstm_init", "authors"))
