#!/usr/bin/env python3
"""Scrapes a taojie metrics endpoint (the URL in argv[1]) and parses the answer with both
parsers of the Prometheus Python client: the OpenMetrics one (strict: it checks the types,
the `_total` suffixes and the final `# EOF`) and the classic text-format one. Prints one JSON
object: the Content-Type, each family's type (OpenMetrics), and every sample as
`name{label="value",...}` (labels sorted) -> value. Exits non-zero when the two parsers
disagree on a sample."""
import json
import sys
import urllib.request

from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families as text_families


def key(sample):
    labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
    return f"{sample.name}{{{labels}}}"


def samples(families):
    return {key(s): s.value for f in families for s in f.samples}


with urllib.request.urlopen(sys.argv[1], timeout=10) as reply:
    content_type = reply.headers["Content-Type"]
    text = reply.read().decode("utf-8")

strict = list(openmetrics_families(text))
classic = samples(text_families(text))
by_openmetrics = samples(strict)
if classic != by_openmetrics:
    sys.exit(f"the parsers disagree:\n{classic}\n{by_openmetrics}")
json.dump(
    {
        "content_type": content_type,
        "types": {f.name: f.type for f in strict},
        "samples": by_openmetrics,
    },
    sys.stdout,
)
