"""The learning protocol's analyses, run as ``mofa-bench diagnose NAME`` (:mod:`.command`).

One module per analysis; each has ``add_arguments(parser)`` and ``run(args)``, and its
docstring is the command's ``--help``:

- :mod:`.mode_signal` (``mode-signal RUN [--reference RUN]``): per identity and expression
  mode, how well a run learnt it and whether the loss's per-image gradient points at the
  truth; with a reference, the errors with one code part swapped in.
- :mod:`.generalization_gap` (``generalization-gap RUN``): a run's errors on its own
  training faces against unseen ones, each beside the mean face's.
- :mod:`.pose_landscape` (``pose-landscape CONFIG``): the photometric loss around the true
  pose of test faces, and how its gradient at the mean face points each pose parameter.
- :mod:`.loss_optimum` (``loss-optimum CONFIG``): the per-image optimum of the training loss
  over the face codes, with the true pose and light (the fit baseline's Adam).
- :mod:`.partial_truth` (``partial-truth CONFIG``): the test errors of codes that are true on
  some parts and the mean face elsewhere.
- :mod:`.signal` (``signal CONFIG``): per renderer, with and without landmarks, how well each
  test image's loss gradient at the mean face points each code part (pose, leading face
  modes, light bands) at its truth; its gradient and correlation are pose-landscape's too.
- :mod:`.fit_curves` (``fit-curves CONFIG``): per renderer, with and without landmarks, the
  test errors of the per-image Adam fit from the mean face against steps and seconds.

:mod:`.stats` holds what they share (one Pearson correlation, one bootstrap interval).
"""
