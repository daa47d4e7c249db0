"""GenAIOps: prompts, connections, local LLMs, indexes, flows, evaluation and tracing."""
