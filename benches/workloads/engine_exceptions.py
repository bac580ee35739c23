"""Library-heavy, exception-heavy workload for the engine benchmark: a few project functions whose
time goes to standard-library Python code that raises and catches exceptions inside itself
(`ipaddress` trying IPv4 then IPv6 on bad input, `json` rejecting bad documents, `fractions`
parsing, `email.utils` dates). Library code is outside the project, but `RAISE`, `PY_UNWIND` and
`PY_THROW` cannot be disabled: with the events enabled globally every exception raised in the
library still reaches fever's callback. Prints the number of project calls in the timed part and
that part's time.
"""

import ipaddress
import json
import sys
import time
from email.utils import parsedate_to_datetime
from fractions import Fraction

BAD_ADDRESSES = ["10.0.0.256", "fe80::zz", "not an address", "1.2.3", "::1::2", "300.1.1.1"]
BAD_DOCUMENTS = ['{"a": 1,', "[1, 2", '{"b": tru}', "nul", '"open']
BAD_FRACTIONS = ["1/x", "abc", "3..5", "1/2/3"]
BAD_DATES = ["not a date", "Mon, 32 Foo 2020", ""]


def parse_address(text):
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def parse_document(text):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


def parse_fraction(text):
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError):
        return None


def parse_date(text):
    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None


def round_of_parsing():
    found = 0
    for text in BAD_ADDRESSES:
        found += parse_address(text) is None
    for text in BAD_DOCUMENTS:
        found += parse_document(text) is None
    for text in BAD_FRACTIONS:
        found += parse_fraction(text) is None
    for text in BAD_DATES:
        found += parse_date(text) is None
    return found


if __name__ == "__main__":
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 6000
    per_round = 1 + len(BAD_ADDRESSES) + len(BAD_DOCUMENTS) + len(BAD_FRACTIONS) + len(BAD_DATES)
    t0 = time.perf_counter()
    rejected = sum(round_of_parsing() for _ in range(rounds))
    elapsed = time.perf_counter() - t0
    print(f"rejected: {rejected}")
    print(f"calls: {rounds * per_round}")
    print(f"in-script seconds: {elapsed:.6f}")
