__version__: str

def cli_main(argv: list[str]) -> int:
    """Run the fever command line with ``argv`` (``argv[0]`` is the program name); returns the exit code."""
