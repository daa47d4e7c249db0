"""Flows: a DAG of nodes (prompt + LLM, Python function, safety check) run line by line.

A ``kind: Flow`` spec names its inputs, its nodes and its outputs; a node takes values from the
flow's inputs and other nodes' outputs with references (``${inputs.question}``,
``${generate.output}``, ``${lookup.output.title}``), which also order the DAG. A node may have
variants (another prompt version, model, parameters): a run picks one per node, and
:func:`cauce.genai.batches.compare` runs them side by side. A Python function decorated with
:func:`flow` is a flow too.

Every run of a line is a trace: ``invoke_agent {flow}`` with one span per node and the LLM
calls beneath. Flow versions are immutable and lineage nodes, linked from the prompt versions
they use. A line runs where it is called (a Python flow's function is imported there); flows and
their versions are records, read and registered through the server for a workspace on one.

One module a concept: :mod:`~cauce.genai.flows.spec` is the spec and the order of its nodes,
:mod:`~cauce.genai.flows.lines` runs one line, :mod:`~cauce.genai.flows.records` records, lists
and loads flow versions (Python flows' included).

Example::

    answer = cauce.flows.load("rag-answer").run({"question": "What is a canary?"})
    answer.outputs["answer"], answer.input_tokens, answer.trace_id
"""

from cauce.genai.flows.lines import Flow, FlowBlocked, LineResult, pinned_index_version
from cauce.genai.flows.records import (
    FlowInfo,
    FlowVersion,
    PythonFlow,
    flow,
    get_flow,
    get_version,
    list_flows,
    load,
    register,
    register_python,
    versions,
)
from cauce.genai.flows.spec import FlowSpec

__all__ = [
    "Flow",
    "FlowBlocked",
    "FlowInfo",
    "FlowSpec",
    "FlowVersion",
    "LineResult",
    "PythonFlow",
    "flow",
    "get_flow",
    "get_version",
    "list_flows",
    "load",
    "pinned_index_version",
    "register",
    "register_python",
    "versions",
]
