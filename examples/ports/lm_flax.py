"""The LSTM language-model head of lm_torch.py in Flax NNX: nnx.Embed, nnx.RNN over an OptimizedLSTMCell, nnx.Linear."""

from flax import nnx

VOCABULARY, WIDTH, HIDDEN = 20, 8, 16


class LanguageModel(nnx.Module):
    def __init__(self, rngs: nnx.Rngs) -> None:
        self.encoder = nnx.Embed(VOCABULARY, WIDTH, rngs=rngs)
        self.rnn = nnx.RNN(nnx.OptimizedLSTMCell(WIDTH, HIDDEN, rngs=rngs))
        self.decoder = nnx.Linear(HIDDEN, VOCABULARY, rngs=rngs)

    def __call__(self, tokens):  # type: ignore[no-untyped-def]
        return self.decoder(self.rnn(self.encoder(tokens)))


def lm() -> LanguageModel:
    return LanguageModel(nnx.Rngs(0))
