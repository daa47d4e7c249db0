"""Evaluation: offline evaluators (text overlap, retrieval, embeddings) and LLM judges."""
