"""Evals: answer-faithfulness suites, metrics, judges' benchmarks and reports."""
