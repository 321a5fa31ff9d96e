"""The rendering engine: LaTeX formulas from a corpus (captions, im2latex lists, text files, built
datasets, the formula generator) drawn into checked images of dark ink on a light page.

Modules: :mod:`~data_prep.render.generator` (random well-formed formulas over the CROHME symbols),
:mod:`~data_prep.render.corpus` (where formulas come from), :mod:`~data_prep.render.style` (seeded
looks), :mod:`~data_prep.render.renderers` (mathtext, real LaTeX), :mod:`~data_prep.render.augment`
(albumentations), :mod:`~data_prep.render.engine` (one checked rendering);
:mod:`~data_prep.render.inkml` draws online strokes (InkML) like the CROHME bitmaps and
:mod:`~data_prep.render.inkml_compare` measures how alike they are;
:mod:`~data_prep.render.ink_bank`, :mod:`~data_prep.render.ink_tree`,
:mod:`~data_prep.render.ink_layout` and :mod:`~data_prep.render.ink_draw` compose a formula from
handwritten CROHME symbols (the ``ink`` renderer). The ``synthetic`` source
(:mod:`data_prep.readers.synthetic`) puts them into a data recipe.
"""
