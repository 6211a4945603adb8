"""Code shared by training and serving: the whole pipeline.

``__version__`` is the model version. Bump it with every change that should
produce a new model: ame records it on each version it trains and refuses to
register a second version from the same code version.
"""

__version__ = "1.0.0"
