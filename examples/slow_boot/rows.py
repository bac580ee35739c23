"""One sale per CSV row."""

from dataclasses import dataclass


@dataclass
class Sale:
    date: str
    region: str
    product: str
    units: int
    unit_price: float


def parse_row(header, record):
    fields = dict(zip(header, record))
    return Sale(
        date=fields["date"],
        region=fields["region"],
        product=fields["product"],
        units=int(fields["units"]),
        unit_price=float(fields["unit_price"]),
    )
