"""A program that is slow to start and fast to finish: the loop `fever watch` makes instant.

Try it:  .venv/bin/fever watch examples/slow_boot/app.py
The first run loads the sales data (~1.5 s, `loading data.csv...`), prints a summary and waits.
Now edit summarize() below (say, count units instead of revenue, or change the top-3 to top-2)
and save: the script runs again at once, load_data() is answered from the call cache (no
`loading` line; `fever: cache hit load_data() saved 1.5x s`), and the new summary is printed.
Edit load_data() in loader.py, or parse_row() in rows.py, and the next run loads for real again.
Compare with `.venv/bin/fever watch --no-cache examples/slow_boot/app.py`. Ctrl-C stops fever.
"""

import os

from loader import load_data

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data.csv")


def summarize(sales):
    """The fast step: edit me while `fever watch` runs."""
    revenue = {}
    for sale in sales:
        revenue[sale.region] = revenue.get(sale.region, 0.0) + sale.units * sale.unit_price
    top = sorted(revenue, key=revenue.get, reverse=True)[:3]
    total = sum(revenue.values())
    return f"{len(sales)} sales, revenue {total:.2f}; top regions: " + ", ".join(
        f"{region} {revenue[region]:.2f}" for region in top
    )


sales = load_data(DATA)
print(f"summary: {summarize(sales)}")
