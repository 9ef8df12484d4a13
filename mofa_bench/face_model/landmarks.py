"""iBUG-68 landmarks on MediaPipe's canonical face mesh.

:data:`IBUG68_FROM_MEDIAPIPE` gives, for each of the 68 points of the iBUG / 300-W
scheme (0-based, standard order), the MediaPipe face-mesh vertex (0..467) that marks
it. The table follows the published MediaPipe → dlib-68 correspondence of Peizhi Yan
(github.com/PeizhiYan/Mediapipe_2_Dlib_Landmarks), reduced to one vertex per landmark:

* where that table averages two vertices we keep one — 27 → 6 (of 168/6, the one
  nearer the eye-corner height), 28 → 197 (of 197/195);
* the jaw line 0..8 is re-sampled at equal image-plane arc length along MediaPipe's face
  oval from vertex 127 (ear level) to 152 (chin), and 9..16 are the exact mirror images,
  so the contour is left/right symmetric;
* the nostril ends 31 / 35 are 98 / 327 (the alar base, as in the table's later version).

Sides. The canonical frame has x towards image right (the subject's left), y up and
z towards the viewer. iBUG "right" features are the subject's right, i.e. image left,
at x < 0: the right brow 17-21 (70 … 107), right eye 36-41 (33 … 144, 36 = outer corner
at x ≈ -44.5 mm, 39 = inner corner at x ≈ -18.6 mm) and mouth corner 48 (61). Their
counterparts 22-26, 42-47 and 54 lie at x > 0 and are exact mirror vertices
(x → -x) on the symmetric canonical mesh. The nose tip 30 (vertex 4) is the most
forward vertex (largest z), the chin 8 (vertex 152) the lowest (smallest y).

The indices refer to the canonical mesh's own vertices; the subdivided default model
keeps those vertices at the same indices, so the table applies to every level.
"""

from __future__ import annotations

#: MediaPipe vertex index (0..467) of each iBUG-68 landmark, in iBUG order (0-based).
IBUG68_FROM_MEDIAPIPE: tuple[int, ...] = (
    # 0-16 jaw line, from the subject's right ear (image left) over the chin (8)
    127, 234, 93, 132, 58, 136, 150, 176, 152, 400, 379, 365, 288, 361, 323, 454, 356,
    # 17-21 right brow (image left), outer → inner
    70, 63, 105, 66, 107,
    # 22-26 left brow (image right), inner → outer
    336, 296, 334, 293, 300,
    # 27-30 nose bridge, top → tip
    6, 197, 5, 4,
    # 31-35 nostrils, image left → right (33 = subnasale)
    98, 97, 2, 326, 327,
    # 36-41 right eye: outer corner, upper lid (2), inner corner, lower lid (2)
    33, 160, 158, 133, 153, 144,
    # 42-47 left eye: inner corner, upper lid (2), outer corner, lower lid (2)
    362, 385, 387, 263, 373, 380,
    # 48-59 outer lips: right corner, upper lip → left corner (54), lower lip back
    61, 39, 37, 0, 267, 269, 291, 321, 314, 17, 84, 91,
    # 60-67 inner lips: right corner, upper (61-63), left corner (64), lower (65-67)
    78, 82, 13, 312, 308, 317, 14, 87,
)

#: iBUG-68 landmark groups (0-based positions into the 68), for checks and plots.
IBUG68_GROUPS: dict[str, tuple[int, ...]] = {
    "jaw": tuple(range(0, 17)),
    "right_brow": tuple(range(17, 22)),
    "left_brow": tuple(range(22, 27)),
    "nose_bridge": tuple(range(27, 31)),
    "nostrils": tuple(range(31, 36)),
    "right_eye": tuple(range(36, 42)),
    "left_eye": tuple(range(42, 48)),
    "outer_lips": tuple(range(48, 60)),
    "inner_lips": tuple(range(60, 68)),
}

#: iBUG-68 position of each landmark's left/right mirror partner (self for the midline).
IBUG68_MIRROR: tuple[int, ...] = (
    tuple(range(16, -1, -1))                      # jaw
    + tuple(range(26, 21, -1)) + tuple(range(21, 16, -1))  # brows
    + (27, 28, 29, 30)                            # bridge
    + (35, 34, 33, 32, 31)                        # nostrils
    + (45, 44, 43, 42, 47, 46)                    # right eye → left eye
    + (39, 38, 37, 36, 41, 40)                    # left eye → right eye
    + (54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55)  # outer lips
    + (64, 63, 62, 61, 60, 67, 66, 65)            # inner lips
)
