"""The hidden first line that marks the PR report comment, shared by the renderer and the poster."""

MARKER = "<!-- flightdelay:pr-report -->"
