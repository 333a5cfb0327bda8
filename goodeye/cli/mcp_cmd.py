"""`goodeye mcp`: serve the MCP tools over stdio (the SDK is imported only when this runs)."""

import click

from goodeye.cli.remote import RemoteCommand, server_options


@click.command("mcp", cls=RemoteCommand)
@server_options
def mcp(settings):
    """Serve the MCP tools over stdio, as a client of a Goodeye server (for Claude Desktop and other MCP clients)."""
    from goodeye.mcp_server import serve

    serve(settings)
