"""GenAI collector records for tests: one row per request, in the columns the collector writes to
its ``genai`` collection, generated from a seed so that each test states what a window held.

Importable from every test module (pytest puts this folder on sys.path, as for builders).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

# A support assistant for a subscription service: questions about billing, answered from the
# billing documents (each answer is a sentence of the context it was retrieved with).
PLANS = ["Pro plan", "Team plan", "annual subscription", "family plan", "storage add-on"]
BILLING = [
    "How do I get a refund for the {x}?",
    "Why was I charged twice for the {x}?",
    "Can I change the billing date of my {x}?",
    "How do I update the card that pays for the {x}?",
    "Where do I find the invoice for my {x}?",
    "Is there a discount if I pay the {x} yearly?",
    "What happens to my {x} if a payment fails?",
    "Can I get a receipt with my company name for the {x}?",
]
FACTS = [
    "Refunds are paid back to the original card within 5 business days.",
    "A duplicate charge is reversed automatically within 3 days.",
    "The billing date can be moved once per month from the billing page.",
    "The payment card is updated under Settings, Billing, Payment method.",
    "Invoices are listed under Settings, Billing, Invoices as PDF files.",
    "Paying yearly gives a discount of 20 percent on every plan.",
    "After a failed payment the plan stays active for 7 days while we retry.",
    "Receipts carry the company name entered under Settings, Billing, Details.",
]
# After the change of topic: hardware and shipping, which the billing documents do not cover.
DEVICES = ["router", "smart speaker", "camera", "thermostat", "doorbell"]
SHIPPING = [
    "My {x} arrived broken, what should I do?",
    "How long does shipping a {x} to Canada take?",
    "The {x} does not turn on after the firmware update.",
    "Which power adapter fits the {x}?",
    "Can I track the {x} I ordered last week?",
    "How do I reset the {x} to factory settings?",
]
UNRELATED = [
    "Our offices are closed on public holidays.",
    "The community forum is moderated by volunteers.",
    "Gift cards cannot be exchanged for cash.",
]


def records(
    n: int,
    start: int,
    end: int,
    *,
    seed: int = 0,
    deployment: str = "blue",
    topic: str = "billing",
    grounded: bool = True,
    error_every: int = 0,
    refuse_every: int = 0,
    flag_every: int = 0,
    block_every: int = 0,
    cost: float | None = 0.0004,
    latency_ms: float = 800.0,
) -> pd.DataFrame:
    """``n`` requests spread over ``start < timestamp <= end``: billing questions answered from
    their context (``grounded=False``: the contexts retrieved no longer support the answers),
    or ``topic="shipping"`` questions; every ``error_every``-th request fails with a 500, every
    ``refuse_every``-th is declined in words, every ``flag_every``-th flagged and every
    ``block_every``-th blocked (0: none)."""
    rng = np.random.default_rng(seed)
    stamps = np.linspace(start + 1, end, n).astype(np.int64)
    rows = []
    for i in range(n):
        k = int(rng.integers(len(BILLING)))
        if topic == "billing":
            query = BILLING[k].format(x=PLANS[int(rng.integers(len(PLANS)))])
            answer = FACTS[k]
        else:
            j = int(rng.integers(len(SHIPPING)))
            query = SHIPPING[j].format(x=DEVICES[int(rng.integers(len(DEVICES)))])
            answer = FACTS[k]
        contexts = [FACTS[k], FACTS[(k + 1) % len(FACTS)]] if grounded else list(UNRELATED)
        failed = bool(error_every) and i % error_every == error_every - 1
        refused = bool(refuse_every) and i % refuse_every == refuse_every - 1
        blocked = bool(block_every) and i % block_every == block_every - 1
        flagged = blocked or (bool(flag_every) and i % flag_every == flag_every - 1)
        stream = i % 2 == 0
        tokens_in = 40 + int(rng.integers(0, 20))
        tokens_out = 0 if failed or blocked else 12 + int(rng.integers(0, 8))
        completion = "" if failed or blocked else answer
        finish = None if failed or blocked else "stop"
        if refused and not (failed or blocked):
            completion = "I'm sorry, but I can't help with that request."
        safety = [
            {
                "direction": "input",
                "filter": "injection",
                "action": "block" if blocked else "flag",
                "triggered": flagged,
                "score": 0.9 if flagged else 0.01,
                "reasons": ["instruction override"] if flagged else [],
            }
        ]
        rows.append(
            {
                "correlation_id": f"{deployment}-{seed}-{i}",
                "timestamp": int(stamps[i]),
                "deployment": deployment,
                "source": "live",
                "target": "flows:/rag/1",
                "model": "smollm2",
                "operation": "chat",
                "key": "team-a",
                "session_id": f"conversation-{i % 3}",
                "user_id": f"user-{i % 3}",
                "status": 500 if failed else (400 if blocked else 200),
                "error": "upstream_error" if failed else ("content_filter" if blocked else None),
                "stream": stream,
                "abandoned": False,
                "cached": False,
                "prompt": json.dumps([{"role": "user", "content": query}]),
                "query": query,
                "completion": completion,
                "contexts": json.dumps(contexts),
                "input_tokens": tokens_in,
                "output_tokens": tokens_out,
                "usage_estimated": False,
                "cost": cost,
                "ttft_ms": latency_ms / 4 if stream and not (failed or blocked) else None,
                "latency_ms": latency_ms + float(rng.integers(0, 100)),
                "finish_reason": finish,
                "safety": json.dumps(safety),
                "flagged": flagged,
                "blocked": blocked,
                "trace_id": None,
            }
        )
    return pd.DataFrame(rows)


def table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Records written by hand: the given fields over a plain answered chat request."""
    base = records(1, 0, 1).iloc[0].to_dict()
    return pd.DataFrame([{**base, "correlation_id": f"r{i}", **row} for i, row in enumerate(rows)])
