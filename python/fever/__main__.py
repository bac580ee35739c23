"""`fever ...` and `python -m fever ...`: hand the arguments to the Rust command line, after
checking that this interpreter is one fever supports."""

import sys


def main() -> None:
    from fever._support import problem

    found = problem()
    if found is not None:
        message, hint = found
        sys.stderr.write(f"fever: error: {message}\nhint: {hint}\n")
        sys.exit(2)
    from fever import _native

    sys.exit(_native.cli_main(sys.argv))


if __name__ == "__main__":
    main()
