"""Text embedders (sentence-transformers, ONNX Runtime, a hashing fake) and the embedding cache
(`models`).

The package exports nothing: callers import the module they need, so that importing one of
its modules does not import the others.
"""
