"""An LSTM language-model head as PyTorch's word_language_model example writes one (embedding, LSTM, decoder over the
vocabulary), small; its port to Flax NNX is lm_flax.py. torch's LSTM keeps two bias vectors: the faithful port holds
the second at zero, out of training, since Flax's cells keep one."""

import torch
from torch import nn

VOCABULARY, WIDTH, HIDDEN = 20, 8, 16


class LanguageModel(nn.Module):
    def __init__(self, extra_relu: bool = False) -> None:
        super().__init__()
        self.encoder = nn.Embedding(VOCABULARY, WIDTH)
        self.rnn = nn.LSTM(WIDTH, HIDDEN, batch_first=True)
        self.decoder = nn.Linear(HIDDEN, VOCABULARY)
        self.extra_relu = extra_relu

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        output, _ = self.rnn(self.encoder(tokens))
        if self.extra_relu:  # the bug
            output = torch.relu(output)
        return self.decoder(output)


def one_bias(model: LanguageModel) -> LanguageModel:
    model.rnn.bias_hh_l0.requires_grad_(False)
    with torch.no_grad():
        model.rnn.bias_hh_l0.zero_()
    return model


def lm() -> LanguageModel:
    torch.manual_seed(0)
    return one_bias(LanguageModel())


def lm_two_biases() -> LanguageModel:
    torch.manual_seed(0)
    return LanguageModel()


def lm_extra_relu() -> LanguageModel:
    torch.manual_seed(0)
    return one_bias(LanguageModel(extra_relu=True))
