"""The prompt registry: prompts with immutable versions, typed variables and movable labels.

A version holds chat messages (``system``/``user``/``assistant``) whose contents are Jinja2
templates, the variables they take (typed), default model parameters and a commit message.
Templates render in Jinja2's sandbox with strict variables: a value is inserted as text, never
evaluated as template code, and a missing or unexpected variable is an error.

Labels (``production``, ``staging``, any name) point at versions and move with history, reason
and actor; ``latest`` is automatic (the newest version). References: ``prompts:/name/3``,
``prompts:/name@production``, ``prompts:/name`` (the newest).

One module a concept: :mod:`~cauce.genai.prompts.spec` is what a version holds and how it
renders, :mod:`~cauce.genai.prompts.registry` registers, labels, tags and reads them.

Example::

    cauce.prompts.register("answer", [{"role": "user", "content": "Answer: {{ question }}"}])
    cauce.prompts.set_label("answer", "production", 1, reason="reviewed")
    messages = cauce.prompts.render("prompts:/answer@production", question="What is Cauce?")
"""

from cauce.genai.prompts.registry import (
    create_prompt,
    delete_label,
    delete_prompt,
    delete_prompt_tag,
    delete_version_tag,
    diff,
    get_prompt,
    get_version,
    label_history,
    latest_version,
    list_prompts,
    load,
    register,
    render,
    set_label,
    set_prompt_tags,
    set_version_tags,
    update_prompt,
    version_by_label,
    versions,
)
from cauce.genai.prompts.spec import Prompt, PromptSpec, PromptVersion

__all__ = [
    "Prompt",
    "PromptSpec",
    "PromptVersion",
    "create_prompt",
    "delete_label",
    "delete_prompt",
    "delete_prompt_tag",
    "delete_version_tag",
    "diff",
    "get_prompt",
    "get_version",
    "label_history",
    "latest_version",
    "list_prompts",
    "load",
    "register",
    "render",
    "set_label",
    "set_prompt_tags",
    "set_version_tags",
    "update_prompt",
    "version_by_label",
    "versions",
]
