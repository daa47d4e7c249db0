"""GenAIOps: prompts, connections, the local LLM, indexes, flows, evaluation and tracing."""
