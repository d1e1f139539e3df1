"""Training the project's own models (needs torch and transformers; nothing at answer time imports this).

`qa.training.reader` fine-tunes the bundled all-MiniLM-L6-v2 weights into the reader that
qa.answering.reader runs on ONNX Runtime: `qa fit reader`. This package may import the lower
layers of qa (ingest, evaluation, answering); no other part of qa imports it.
"""
