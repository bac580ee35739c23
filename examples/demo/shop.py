"""A tiny shop that keeps printing the total of one order: the program `make demo` edits live.

Try it yourself:  .venv/bin/fever run examples/demo/shop.py
then change the tax rate in price_with_tax() or the discount in Cart.total() and save: the next
line shows the new total, and the order counter keeps counting (no restart). Ctrl-C closes the shop.
"""

import os
import time


def price_with_tax(price):
    return round(price * 1.20, 2)


class Cart:
    def __init__(self, items):
        self.items = items  # (name, unit price, quantity)

    def total(self):
        return round(sum(price_with_tax(price) * qty for _, price, qty in self.items), 2)


def main():
    cart = Cart([("coffee", 3.50, 2), ("bagel", 2.25, 1), ("juice", 4.00, 1)])
    print(f"shop open (pid {os.getpid()})", flush=True)
    orders = 0
    try:
        while True:
            orders += 1
            print(f"order #{orders}: {len(cart.items)} items, total {cart.total():.2f}", flush=True)
            time.sleep(0.5)
    except KeyboardInterrupt:
        print(f"shop closed after {orders} orders", flush=True)


if __name__ == "__main__":
    main()
