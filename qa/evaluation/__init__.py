"""`qa eval`: labelled question sets and BEIR benchmarks, scored with standard IR metrics.

The package exports what `qa eval` and the fits (qa.training) call: evaluating a question set, a
BEIR folder or dialogues, the runs and their metrics, and saving, comparing and formatting the
results. The rest is in its modules (`questions`, `metrics`, `runner`, `report`, `answers`,
`dialogues`, `beir`, `cache`, ...).
"""

from qa._lazy import lazy_exports

_EXPORTS = {
    "read_unanswerable": "qa.evaluation.answers",
    "check_corpora": "qa.evaluation.dialogues",
    "corpus_folders": "qa.evaluation.dialogues",
    "load_dialogues": "qa.evaluation.dialogues",
    "run_dialogue_sets": "qa.evaluation.dialogues",
    "document_run": "qa.evaluation.metrics",
    "evaluate_run": "qa.evaluation.metrics",
    "mean": "qa.evaluation.metrics",
    "passage_run": "qa.evaluation.metrics",
    "judge_questions": "qa.evaluation.questions",
    "compare": "qa.evaluation.report",
    "format_comparison": "qa.evaluation.report",
    "format_dialogues": "qa.evaluation.report",
    "format_evaluations": "qa.evaluation.report",
    "load_saved": "qa.evaluation.report",
    "output_paths": "qa.evaluation.report",
    "save_evaluation": "qa.evaluation.report",
    "write_runs": "qa.evaluation.report",
    "chunk_table": "qa.evaluation.runner",
    "collections_from": "qa.evaluation.runner",
    "embed_queries": "qa.evaluation.runner",
    "evaluate_beir": "qa.evaluation.runner",
    "evaluate_question_folder": "qa.evaluation.runner",
    "evaluate_questions": "qa.evaluation.runner",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
