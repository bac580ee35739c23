"""Library-heavy workload for the tracing benchmark: a few project functions whose time goes to
the standard library (json.dumps/json.loads, re.findall, sorted with key functions).

Library code is outside the project, so fever stops seeing it at its first call: only the project
functions (and the project's key functions that sorted() calls) are traced. Prints the number of
calls of project functions during the timed part and that part's time.
"""

import json
import re
import sys
import time

WORD = re.compile(r"[a-z]+\d*")


def make_document(i):
    """A JSON-able document of ~200 records."""
    return {
        "id": i,
        "records": [
            {"name": f"item{j}x{i}", "score": (j * 7919 + i) % 1000, "tags": ["alpha", "beta", str(j % 13)],
             "text": f"lorem{j} ipsum dolor{i} sit amet consectetur{j % 7} adipiscing elit"}
            for j in range(200)
        ],
    }


def by_score(record):
    return record["score"], record["name"]


def round_trip(document):
    return json.loads(json.dumps(document, sort_keys=True))


def words_of(document):
    text = " ".join(r["text"] for r in document["records"])
    return WORD.findall(text)


def rank(document):
    best = sorted(document["records"], key=by_score)[-10:]
    words = sorted(set(words_of(document)), key=str.lower)
    return [r["name"] for r in best], len(words)


def process(i):
    document = round_trip(make_document(i))
    names, distinct = rank(document)
    return len(names) + distinct


if __name__ == "__main__":
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 800
    t0 = time.perf_counter()
    total = 0
    for i in range(rounds):
        total += process(i)
    elapsed = time.perf_counter() - t0
    print(f"total {total}")
    # Per round: process, make_document, round_trip, rank, words_of, the generator in words_of
    # (one call, then 200 resumptions) and 200 calls of the sort key by_score.
    print(f"calls: {rounds * (6 + 200)}")
    print(f"in-script seconds: {elapsed:.6f}")
