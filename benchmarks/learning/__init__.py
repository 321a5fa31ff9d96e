"""Learning experiments on the CPU: train the tiny model on rendered formulas through the project's
own entry points and score it on held-out formulas and on a swapped-image control.

``experiment`` runs one arm (data folder + training recipe -> figures), ``structure`` groups scores
by 2-D structure, ``results`` writes the results JSON with the command, commit and machine.
The benchmarks on top: ``benchmarks.learning_structure`` (``make bench-learning``) and
``benchmarks.ablation_mini`` (``make ablation-mini``).
"""
