"""Contact sheets: a grid of faces rendered under random codes, for looking at the model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mofa_bench.camera import Camera
from mofa_bench.code_vector import zero_code
from mofa_bench.decoder import MoFADecoder
from mofa_bench.face_model.model import FaceModel
from mofa_bench.sampling import CodePrior, sample_codes


def tile_images(images: torch.Tensor, columns: int, pad: int = 2, pad_value: float = 1.0) -> np.ndarray:
    """Tile ``(B, 3, H, W)`` images in [0, 1] into one ``(rows·H', cols·W', 3)`` uint8 array."""
    b, _, h, w = images.shape
    rows = (b + columns - 1) // columns
    sheet = np.full((rows * (h + pad) + pad, columns * (w + pad) + pad, 3), pad_value, dtype=np.float32)
    arr = images.detach().clamp(0, 1).permute(0, 2, 3, 1).cpu().float().numpy()
    for i in range(b):
        r, c = divmod(i, columns)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        sheet[y:y + h, x:x + w] = arr[i]
    return (sheet * 255.0 + 0.5).astype(np.uint8)


def comparison_tiles(images: torch.Tensor, face: torch.Tensor, mask: torch.Tensor,
                     background: float = 0.35, overlay_alpha: float = 0.6) -> torch.Tensor:
    """Input | reconstruction | overlay triples for looking at a fit.

    Args:
        images: ``(B, 3, H, W)`` input photos in [0, 1].
        face: ``(B, 3, H, W)`` the face rendered over black (colour · coverage).
        mask: ``(B, 1, H, W)`` coverage in [0, 1].
        background: grey level behind the reconstruction.
        overlay_alpha: opacity of the face drawn over the input.

    Returns:
        ``(B, 3, 3, H, W)``: per row the input, the reconstruction on grey, the overlay.
    """
    recon = face + background * (1 - mask)
    overlay = overlay_alpha * face + (1 - overlay_alpha * mask) * images
    return torch.stack([images, recon, overlay], 1)


def render_contact_sheet(model: FaceModel, path: str | Path, rows: int = 4, columns: int = 6,
                         image_size: int = 240, seed: int = 0, renderer: str = "per_vertex",
                         prior: CodePrior = CodePrior(), device: str = "cpu") -> Path:
    """Render ``rows × columns`` random faces (the first is the zero code) to a PNG.

    Args:
        model: the face model.
        path: output PNG.
        rows, columns: grid size.
        image_size: pixels per face.
        seed: RNG seed for the codes.
        renderer: backend used to draw.
        prior: code sampling ranges.
        device: torch device.

    Returns:
        The PNG path.
    """
    from PIL import Image

    generator = torch.Generator().manual_seed(seed)
    codes = sample_codes(rows * columns, prior, generator)
    codes[0] = zero_code(1)[0]
    decoder = MoFADecoder(model.to(device, torch.float32), Camera(image_size), renderer=renderer)
    background = torch.full((3, image_size, image_size), 0.35, device=device)
    images = []
    with torch.no_grad():
        for chunk in codes.to(device).split(8):
            image, _ = decoder.render(chunk, background)
            images.append(image.cpu())
    sheet = tile_images(torch.cat(images), columns)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet).save(path)
    return path
