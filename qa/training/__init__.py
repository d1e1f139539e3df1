"""Fitting and training the models the package ships (`qa fit`; nothing at answer time imports this).

`qa.training.reader` fine-tunes the bundled all-MiniLM-L6-v2 weights into the reader that
qa.answering.reader runs on ONNX Runtime (`qa fit reader`, which needs torch and transformers);
`qa.training.answers` fits the answer models (`qa fit answers`) and `qa.training.rerank` the
hybrid re-ranker (`qa fit rerank`) on the tuning collections (`qa.training.retrieval_sets`), with
scikit-learn and scipy. This package may import the lower layers of qa (ingest, evaluation,
answering); no other part of qa imports it.
"""
