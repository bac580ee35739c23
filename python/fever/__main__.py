"""`fever ...` and `python -m fever ...`: hand the arguments to the Rust command line."""

import sys


def main() -> None:
    from fever import _native

    sys.exit(_native.cli_main(sys.argv))


if __name__ == "__main__":
    main()
