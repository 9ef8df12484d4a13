"""How closely a learned decoder draws codes, against the analytic decoder it imitates.

The learned-decoder baseline (:mod:`mofa_bench.methods.learned_decoder`) replaces the
analytic decoder by a network trained on its renders; this scores that network.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from mofa_bench.decoder import MoFADecoder
from mofa_bench.scoring.metrics import photometric_error
from mofa_checks import check_tensor

if TYPE_CHECKING:
    from mofa_bench.methods.learned_decoder import LearnedDecoder


def decoder_fidelity(learned: LearnedDecoder, analytic_decoder: MoFADecoder, codes: torch.Tensor,
                     batch_size: int = 64) -> dict[str, torch.Tensor]:
    """How closely the learned decoder draws ``codes`` compared with the analytic decoder.

    Args:
        learned: the trained network.
        analytic_decoder: the face model, camera and renderer it imitates.
        codes: ``(N, 257)`` codes (e.g. the test split's), on the analytic decoder's device.
        batch_size: codes per forward pass.

    Returns:
        ``{"photometric": (N,), "photometric_image": (N,)}``: mean RGB distance (channels
        in [0, 1]) between the two renderings over black, over the analytic face's
        region and over the whole image.
    """
    check_tensor("codes", codes, f"N {learned.input_scale.shape[0]}", floating=True)
    face, whole = [], []
    was_training = learned.training
    learned.eval()
    with torch.no_grad():
        for start in range(0, codes.shape[0], batch_size):
            code = codes[start:start + batch_size]
            target, mask = analytic_decoder.render(code)
            drawn = learned(code)
            face.append(photometric_error(drawn, target, mask))
            whole.append(photometric_error(drawn, target, torch.ones_like(mask)))
    learned.train(was_training)
    return {"photometric": torch.cat(face), "photometric_image": torch.cat(whole)}
