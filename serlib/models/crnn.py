"""The CRNN of the study: three conv blocks on a log-mel, a BiLSTM over time, mean pooling.

Shapes, for a [B, 1, 128, T] log-mel::

    conv block 1   [B, 32, 64, T/2]     3x3 conv, batch norm, 2x2 max-pool, ReLU
    conv block 2   [B, 64, 32, T/4]
    conv block 3   [B, 128, 16, T/8]
    to sequence    [B, T/8, 2048]       channels x mel bands become the features of a time step
                   [B, T/8, 128]        or, with ``pool_bands``, the mean over the 16 bands
    dropout        [B, T/8, 2048]       training only, and only if asked (the study has none)
    BiLSTM         [B, T/8, 256]        hidden 128 per direction
    mean pool      [B, 256]             over the frames the mask says are real, not padding

``CRNNEncoder`` stops there and returns the 256-dim embedding; ``EmotionClassifier`` (in
``serlib.models``) adds the 256 -> 128 -> C head. The BiLSTM holds almost all the weights
(2.23 M of the 2.36 M of a 4-class CRNN): its input is 2048 features wide. ``pool_bands`` (not
the study's) averages the mel axis away first: the BiLSTM then reads 128 features a step (0.26 M
weights), and a pattern counts the same in whichever band it sits, as when one voice is higher
than another.

Two choices make the training step cheaper without changing what the network is (measured in
``benchmarks/RESULTS_epoch.md``): the convolutions keep their maps channels-last (NHWC, the layout
oneDNN's CPU kernels and tensor-core GPU kernels are fastest in), and each block pools before its
ReLU, which gives exactly the same numbers as the study's ReLU-then-pool (see ``ConvBlock``).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from serlib.errors import UserError

POOL = 2
"""Each conv block halves the mel axis and the time axis."""


class ConvBlock(nn.Sequential):
    """3x3 convolution, batch norm, 2x2 max-pool, ReLU: halves both axes.

    The study's order is ReLU then max-pool. The two orders compute the same numbers, forward and
    backward: ReLU never changes which value of a 2x2 window is the largest, so
    ``relu(max(window)) == max(relu(window))``. Pooling first runs the ReLU on a map 4x smaller.
    The weights are stored channels-last; their names and values are those of a plain
    ``nn.Conv2d``, so runs saved in either layout load into the other.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
            nn.BatchNorm2d(out_channels),  # a DANN may split it by domain: models.adabn
            nn.MaxPool2d(POOL),
            nn.ReLU(inplace=True),
        )
        self.to(memory_format=torch.channels_last)


def pool_mask(mask: torch.Tensor, factor: int) -> torch.Tensor:
    """Shrink a [B, T] frame mask to [B, T // factor]: a pooled frame is real if any input frame was.

    Max-pooling drops a trailing remainder of fewer than ``factor`` frames, and so does this.
    """
    batch, frames = mask.shape
    kept = (frames // factor) * factor
    return mask[:, :kept].reshape(batch, frames // factor, factor).any(dim=-1)


class CRNNEncoder(nn.Module):
    """Log-mel [B, 1, n_mels, T] (+ frame mask [B, T]) -> utterance embedding [B, 256]."""

    input_keys = ("x", "mask")
    """The batch entries ``forward`` takes, in order (see ``serlib.models.heads.encoder_inputs``)."""

    def __init__(
        self,
        n_mels: int = 128,
        channels: tuple[int, ...] = (32, 64, 128),
        lstm_hidden: int = 128,
        dropout: float = 0.0,
        pool_bands: bool = False,
    ):
        super().__init__()
        self.downsample = POOL ** len(channels)
        if n_mels % self.downsample:
            raise UserError(
                f"n_mels={n_mels} must be divisible by {self.downsample} (each conv block halves it)"
            )
        blocks, previous = [], 1
        for width in channels:
            blocks.append(ConvBlock(previous, width))
            previous = width
        self.conv = nn.Sequential(*blocks)
        # Dropout where almost all the weights are: the BiLSTM's 2048-wide input. None at 0, so
        # the study's CRNN draws no extra random numbers and trains exactly as before.
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.pool_bands = pool_bands
        bands = 1 if pool_bands else n_mels // self.downsample
        self.lstm = nn.LSTM(
            input_size=channels[-1] * bands,
            hidden_size=lstm_hidden,
            batch_first=True,
            bidirectional=True,
        )
        self.n_mels = n_mels
        self.embedding_dim = 2 * lstm_hidden

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 1 or x.shape[2] != self.n_mels:
            raise ValueError(f"expected a [B, 1, {self.n_mels}, T] log-mel, got {tuple(x.shape)}")
        if mask is None:
            mask = torch.ones(x.shape[0], x.shape[-1], dtype=torch.bool, device=x.device)
        if x.shape[-1] < self.downsample:  # a clip shorter than one pooled step: pad it to one
            missing = self.downsample - x.shape[-1]
            x = torch.nn.functional.pad(x, (0, missing))
            mask = torch.nn.functional.pad(mask, (0, missing))
        maps = self.conv(x.contiguous(memory_format=torch.channels_last))  # [B, C, F', T']
        if self.pool_bands:
            maps = maps.mean(dim=2, keepdim=True)  # [B, C, 1, T']
        batch, width, bands, steps = maps.shape
        sequence = self.dropout(maps.permute(0, 3, 1, 2).reshape(batch, steps, width * bands))
        step_mask = pool_mask(mask.bool(), self.downsample)
        # Pack so the backward LSTM starts at the last real frame, not in the padding.
        lengths = step_mask.sum(dim=1).clamp(min=1)
        packed = pack_padded_sequence(
            sequence, lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        outputs, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True, total_length=steps)
        keep = step_mask.unsqueeze(-1).to(outputs.dtype)
        keep[:, 0] = 1.0  # an all-padding row still pools its first step instead of dividing by 0
        return (outputs * keep).sum(dim=1) / keep.sum(dim=1)
