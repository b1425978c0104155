"""Command line: thin wrappers that parse input, call one service, format output."""
import click


@click.group()
def main() -> None:
    """geoapp: environmental one-map."""
