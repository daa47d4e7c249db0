"""Pipelines: decorated Python steps, a DAG inferred from calls, cached and stored runs.

``decorators`` is what users write (``@cauce.step``, ``@cauce.pipeline``); ``graph`` turns one call
of a pipeline function into a DAG; ``runner`` schedules it, reuses cached outputs and stores every
run through ``records`` (its writes and cache lookups, as operations of the storage seam);
``runs`` reads stored runs back; ``executors/`` run the steps (in-process, in a process pool, on
Ray); ``materializers`` store step outputs as artifacts by type.
"""

from __future__ import annotations

from cauce.pipelines.decorators import Pipeline, Step, pipeline, step

__all__ = ["Pipeline", "Step", "pipeline", "step"]
