"""Pictures: retrieval result grids (:mod:`~gcahng.viz.grid`, PIL), t-SNE maps of the
embedding space (:mod:`~gcahng.viz.tsne`) and training curves (:mod:`~gcahng.viz.curves`),
both drawn with matplotlib's Agg renderer without touching pyplot's global state.

Nothing is imported here, so that drawing a result grid never loads matplotlib.
"""
